"""SIGHUP: read the configuration again and apply what can change without a restart.

A running worker can take new connector settings (rate limits, timeouts, a new
connector), new synced tables and sync roles, new client limits, a new log level and a
rotated TLS certificate; existing sessions keep going and see the change on their next
statement or connection. What is bound at startup (the listen address, the upstream,
the worker count, the admin endpoint, the journal's schema and timers, the log format)
needs a restart: a change to it is logged by name and otherwise ignored. An invalid
file (or a certificate that does not load) changes nothing: the error is logged and the
running configuration stays. Secrets come from the environment, which a running
process cannot see change: rotating a token needs a restart.

Command-line flags are kept: ``writeproxy serve`` exports them as ``WRITEPROXY_*``
variables, which rank above the file, so reading the settings again gives them back.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from pydantic import ValidationError

from proxy.config import Settings, describe_invalid
from proxy.logformat import set_levels

log = logging.getLogger(__name__)

#: Settings a running worker applies on SIGHUP.
RELOADABLE = frozenset(
    {
        "log_level",
        "connectors",
        "synced_tables",
        "sync_roles",
        "max_client_conn",
        "max_buffered_input_bytes",
        "max_message_bytes",
        "authentication_timeout",
        "connect_timeout",
        "shutdown_timeout",
        "tls_cert_file",
        "tls_key_file",
        "tls_client_ca_file",
        "tls_mode",
    }
)


@dataclass(frozen=True)
class Reloaded:
    """The settings to run with from now on, and what of them changed."""

    settings: Settings
    changed: frozenset[str]
    tls: ssl.SSLContext | None


def read_again(current: Settings) -> Reloaded | None:
    """The configuration as the file and environment say now, with only the reloadable
    settings taken from it; None (logged) when it is invalid."""
    try:
        fresh = Settings()
        tls = fresh.client_tls_context()
    except (ValidationError, ValueError, OSError, ssl.SSLError) as exc:
        # Never the values given (a URL's password): only which setting and why.
        why = describe_invalid(exc) if isinstance(exc, ValidationError) else str(exc)
        log.error("SIGHUP: the configuration is invalid; the running one stays: %s", why)
        return None
    stuck = sorted(
        name
        for name in Settings.model_fields
        if name not in RELOADABLE
        and getattr(fresh, name) != getattr(current, name)
        # The embedded PostgreSQL's URL is made at startup, not configured.
        and not (name == "upstream_url" and fresh.upstream_url is None)
    )
    if stuck:
        log.warning("SIGHUP: %s changed; restart writeproxy to apply", ", ".join(stuck))
    changed = frozenset(
        name for name in RELOADABLE if getattr(fresh, name) != getattr(current, name)
    )
    settings = current.model_copy(update={name: getattr(fresh, name) for name in RELOADABLE})
    return Reloaded(settings, changed, tls)


def apply_log_level(level: str) -> None:
    set_levels(level)


__all__ = ["RELOADABLE", "Reloaded", "apply_log_level", "read_again"]
