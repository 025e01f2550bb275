"""Run the Salesforce sandbox, a local emulator of Salesforce's REST API, over HTTP."""

from __future__ import annotations

from ..common.cli import run_sandbox
from .app import build_app
from .config import SalesforceSandboxConfig


def main(argv: list[str] | None = None) -> None:
    run_sandbox(
        argv,
        prog="python -m proxy.sandbox.salesforce",
        description=__doc__,
        default_port=8086,
        config_model=SalesforceSandboxConfig,
        build_app=build_app,
        credential=(
            "--token",
            "accepted static bearer token (default: sandbox-sf-token)",
            lambda token: {"static_tokens": [token]},
        ),
    )


if __name__ == "__main__":
    main()
