"""The command line every vendor sandbox shares: ``--host``, ``--port``, ``--config``
(a JSON file holding the vendor's sandbox config) and one option naming the accepted
credential; then serve the app with uvicorn until Ctrl-C."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import uvicorn
from pydantic import BaseModel
from starlette.types import ASGIApp

Config = TypeVar("Config", bound=BaseModel)


def run_sandbox(
    argv: list[str] | None,
    *,
    prog: str,
    description: str | None,
    default_port: int,
    config_model: type[Config],
    build_app: Callable[[Config], ASGIApp],
    credential: tuple[str, str, Callable[[str], dict[str, object]]],
) -> None:
    """``credential``: (option, help, the config update the option's value makes)."""
    option, help_text, update = credential
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument(option, dest="credential", help=help_text)
    parser.add_argument("--config", type=Path, help=f"JSON file holding a {config_model.__name__}")
    args = parser.parse_args(argv)
    config = (
        config_model.model_validate_json(args.config.read_text()) if args.config else config_model()
    )
    if args.credential:
        config = config.model_copy(update=update(args.credential))
    uvicorn.run(
        build_app(config),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
