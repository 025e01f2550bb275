"""Run the Stripe sandbox, a local emulator of Stripe's API, over HTTP."""

from __future__ import annotations

from ..common.cli import run_sandbox
from .app import build_app
from .config import StripeSandboxConfig


def main(argv: list[str] | None = None) -> None:
    run_sandbox(
        argv,
        prog="python -m proxy.sandbox.stripe",
        description=__doc__,
        default_port=8087,
        config_model=StripeSandboxConfig,
        build_app=build_app,
        credential=(
            "--api-key",
            "accepted secret key (default: sk_test_sandbox)",
            lambda key: {"api_key": key},
        ),
    )


if __name__ == "__main__":
    main()
