"""Run the Salesforce sandbox, a local emulator of Salesforce's REST API, over HTTP."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from .app import build_app
from .config import SalesforceSandboxConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m proxy.sandbox.salesforce", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8086)
    parser.add_argument("--token", help="accepted static bearer token (default: sandbox-sf-token)")
    parser.add_argument("--config", type=Path, help="JSON file holding a SalesforceSandboxConfig")
    args = parser.parse_args(argv)
    config = (
        SalesforceSandboxConfig.model_validate_json(args.config.read_text())
        if args.config
        else SalesforceSandboxConfig()
    )
    if args.token:
        config = config.model_copy(update={"static_tokens": [args.token]})
    uvicorn.run(
        build_app(config),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
