"""Assembles the Stripe emulator: routes, the gateway middleware, error rendering."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from . import routes_api, routes_control
from .config import StripeSandboxConfig
from .errors import StripeError
from .gateway import Gateway
from .state import SandboxState
from .web import handle_error


def build_app(config: StripeSandboxConfig | None = None) -> Starlette:
    app = Starlette(
        routes=[*routes_control.routes, *routes_api.routes, *routes_api.fallback],
        middleware=[Middleware(Gateway)],
        exception_handlers={StripeError: handle_error},
    )
    app.state.sandbox = SandboxState(config or StripeSandboxConfig())
    return app
