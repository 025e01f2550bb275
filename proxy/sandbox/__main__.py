"""Run the HubSpot sandbox, a local emulator of HubSpot's CRM API, over HTTP."""

from __future__ import annotations

from .common.cli import run_sandbox
from .hubspot import SandboxConfig, build_app


def main(argv: list[str] | None = None) -> None:
    run_sandbox(
        argv,
        prog="python -m proxy.sandbox",
        description=__doc__,
        default_port=8085,
        config_model=SandboxConfig,
        build_app=build_app,
        credential=(
            "--token",
            "accepted bearer token (default: sandbox-token)",
            lambda token: {"token": token},
        ),
    )


if __name__ == "__main__":
    main()
