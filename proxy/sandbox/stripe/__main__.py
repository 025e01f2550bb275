"""Run the Stripe sandbox, a local emulator of Stripe's API, over HTTP."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from .app import build_app
from .config import StripeSandboxConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m proxy.sandbox.stripe", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8087)
    parser.add_argument("--api-key", help="accepted secret key (default: sk_test_sandbox)")
    parser.add_argument("--config", type=Path, help="JSON file holding a StripeSandboxConfig")
    args = parser.parse_args(argv)
    config = (
        StripeSandboxConfig.model_validate_json(args.config.read_text())
        if args.config
        else StripeSandboxConfig()
    )
    if args.api_key:
        config = config.model_copy(update={"api_key": args.api_key})
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
