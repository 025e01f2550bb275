"""TLS on both sides of the proxy, with the standard ``ssl`` module.

Clients: a PostgreSQL client asks for TLS with an SSLRequest; the proxy answers ``S``
and upgrades the socket when it has a certificate (``tls_cert_file``/``tls_key_file``),
else ``N``. ``tls_mode = "require"`` refuses sessions that did not upgrade, as a
``hostssl``-only pg_hba.conf does. ``tls_client_ca_file`` makes the proxy ask clients for
a certificate and verify it against that CA.

Upstream: the upstream URL's ``sslmode`` is honoured as libpq does — ``disable``
(plaintext), ``allow`` and ``prefer`` (TLS when the server offers it, unverified),
``require`` (TLS, unverified unless ``sslrootcert`` is given, as libpq does),
``verify-ca`` (the server's chain checked against ``sslrootcert``) and ``verify-full``
(also its name against the host) — with ``sslrootcert=system`` for the system's CAs and
``sslcert``/``sslkey`` for a client certificate.
"""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSL_MODES: tuple[SslMode, ...] = (
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
)
TlsMode = Literal["disable", "allow", "require"]


class TlsConfigError(ValueError):
    """A certificate, key or CA file cannot be used (a clear startup error)."""


def server_context(cert_file: Path, key_file: Path, client_ca_file: Path | None) -> ssl.SSLContext:
    """The context the proxy presents to its clients (TLS 1.2+)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(
            f"cannot load tls_cert_file {cert_file} / tls_key_file {key_file}: {exc}"
        ) from None
    if client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"cannot load tls_client_ca_file {client_ca_file}: {exc}"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True)
class UpstreamTls:
    """The TLS part of the upstream URL."""

    mode: SslMode = "prefer"
    rootcert: str | None = None  # a file, or "system"
    cert: str | None = None
    key: str | None = None

    @property
    def attempts(self) -> bool:
        """Whether the proxy asks the server for TLS at all."""
        return self.mode != "disable"

    @property
    def required(self) -> bool:
        """Whether a server that refuses TLS is an error."""
        return self.mode in ("require", "verify-ca", "verify-full")

    def context(self) -> ssl.SSLContext:
        """Built once per configuration (loading a CA bundle per session is slow)."""
        return _client_context(self)

    def build_context(self) -> ssl.SSLContext:
        verify = self.mode in ("verify-ca", "verify-full") or (
            self.mode == "require" and self._rootcert_path() is not None
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.mode == "verify-full"
        if verify:
            root = self._rootcert_path()
            try:
                if self.rootcert == "system":
                    context.load_default_certs()
                elif root is not None:
                    context.load_verify_locations(cafile=root)
                else:
                    raise TlsConfigError(
                        f"sslmode={self.mode} needs sslrootcert (a CA file, or 'system')"
                    )
            except (OSError, ssl.SSLError) as exc:
                raise TlsConfigError(f"cannot load sslrootcert {root}: {exc}") from None
            context.verify_mode = ssl.CERT_REQUIRED
        else:
            context.verify_mode = ssl.CERT_NONE
        if self.cert is not None:
            try:
                context.load_cert_chain(self.cert, self.key)
            except (OSError, ssl.SSLError) as exc:
                raise TlsConfigError(f"cannot load sslcert {self.cert}: {exc}") from None
        return context

    def _rootcert_path(self) -> str | None:
        """libpq's default is ~/.postgresql/root.crt when it exists."""
        if self.rootcert is not None and self.rootcert != "system":
            return self.rootcert
        if self.rootcert == "system":
            return None
        default = Path(os.path.expanduser("~/.postgresql/root.crt"))
        return str(default) if self.mode != "require" and default.is_file() else None


@functools.lru_cache(maxsize=8)
def _client_context(tls: UpstreamTls) -> ssl.SSLContext:
    return tls.build_context()
