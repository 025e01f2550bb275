"""The ``writeproxy`` command line (click). Flags override environment variables,
which override the TOML file named by WRITEPROXY_CONFIG."""

from __future__ import annotations

import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from proxy.config import CONFIG_ENV, Settings, describe_invalid
from proxy.journal.model import EntryState


def load_settings(**flags: Any) -> Settings:
    """Settings from flags given on the command line, then env, then TOML."""
    given = {key: value for key, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise click.UsageError(f"invalid configuration:\n{describe_invalid(exc)}") from None
    except ValueError as exc:
        raise click.UsageError(f"invalid configuration:\n{exc}") from exc


@click.group()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"TOML configuration file (same as {CONFIG_ENV}).",
)
def main(config: Path | None) -> None:
    """A Postgres wire-protocol write proxy."""
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)


@main.command()
@click.option("--listen", help="HOST:PORT to accept clients on [env WRITEPROXY_LISTEN].")
@click.option(
    "--upstream",
    "upstream_url",
    help="postgresql:// URL of the upstream; omit for an embedded PostgreSQL "
    "[env WRITEPROXY_UPSTREAM_URL].",
)
@click.option(
    "--workers", type=int, help="Worker processes sharing the port [env WRITEPROXY_WORKERS]."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded PostgreSQL keeps its data [env WRITEPROXY_DATA_DIR].",
)
@click.option("--log-level", help="DEBUG, INFO, WARNING or ERROR [env WRITEPROXY_LOG_LEVEL].")
def serve(**flags: Any) -> None:
    """Relay client sessions to the upstream PostgreSQL."""
    from proxy.server import serve as run

    settings = load_settings(**flags)
    # Kept for the workers' SIGHUP reload, which reads the settings again: flags rank
    # above the file, as these variables do.
    for name, value in flags.items():
        if value is not None:
            os.environ[f"WRITEPROXY_{name.upper()}"] = str(value)
    run(settings)


@main.command()
@click.option("--listen", help="HOST:PORT to accept clients on [env WRITEPROXY_LISTEN].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded PostgreSQL keeps its data [env WRITEPROXY_DATA_DIR].",
)
def demo(**flags: Any) -> None:
    """Embedded PostgreSQL + HubSpot sandbox + proxy, ready for a signup with psql."""
    from proxy.demo import run_demo

    run_demo(load_settings(**flags).model_copy(update={"upstream_url": None}))


_JOURNAL_UPSTREAM = click.option(
    "--upstream",
    "upstream_url",
    help="postgresql:// URL of the upstream holding the journal [env WRITEPROXY_UPSTREAM_URL].",
)


def _journal_target(upstream_url: str | None) -> tuple[str, str]:
    settings = load_settings(upstream_url=upstream_url)
    if settings.upstream_url is None:
        raise click.UsageError(
            "the journal lives in the upstream database: give --upstream or WRITEPROXY_UPSTREAM_URL"
        )
    return settings.upstream_url, settings.journal_schema


def _run_journal(coro: Coroutine[Any, Any, str]) -> str:
    import asyncio

    import asyncpg

    from proxy.journal import JournalError, JournalSetupError

    try:
        return asyncio.run(coro)
    except (
        JournalError,
        JournalSetupError,
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ) as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def journal() -> None:
    """The write journal: vendor calls made inside client transactions."""


@journal.command("list")
@_JOURNAL_UPSTREAM
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([state.value for state in EntryState]),
    help="Only entries in this state (repeatable).",
)
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def journal_list(upstream_url: str | None, states: tuple[str, ...], limit: int) -> None:
    """List journal entries, newest first (no row values)."""
    from proxy.journal.admin import list_entries

    dsn, schema = _journal_target(upstream_url)
    click.echo(_run_journal(list_entries(dsn, schema, states, limit)))


@journal.command("retry")
@_JOURNAL_UPSTREAM
@click.argument("entry_id", type=int)
def journal_retry(upstream_url: str | None, entry_id: int) -> None:
    """Make a conflicting or backing-off entry due again now."""
    from proxy.journal.admin import retry_entry

    dsn, schema = _journal_target(upstream_url)
    click.echo(_run_journal(retry_entry(dsn, schema, entry_id)))
