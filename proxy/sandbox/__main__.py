"""Run the HubSpot sandbox, a local emulator of HubSpot's CRM API, over HTTP."""

from __future__ import annotations

import argparse
from pathlib import Path

from .hubspot import SandboxConfig
from .server import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m proxy.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--token", help="accepted bearer token (default: sandbox-token)")
    parser.add_argument("--config", type=Path, help="JSON file holding a SandboxConfig")
    args = parser.parse_args(argv)
    config = (
        SandboxConfig.model_validate_json(args.config.read_text())
        if args.config
        else SandboxConfig()
    )
    if args.token:
        config = config.model_copy(update={"token": args.token})
    run(args.host, args.port, config)


if __name__ == "__main__":
    main()
