"""The ``writeproxy`` command line (click). Flags override environment variables,
which override the TOML file named by WRITEPROXY_CONFIG."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from proxy.config import CONFIG_ENV, Settings


def load_settings(**flags: Any) -> Settings:
    """Settings from flags given on the command line, then env, then TOML."""
    given = {key: value for key, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except (ValidationError, ValueError) as exc:
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

    run(load_settings(**flags))


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
