"""Assembles the HubSpot emulator: routes, the gateway middleware, error rendering."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from . import routes_associations, routes_batch, routes_control, routes_objects, routes_properties
from .config import SandboxConfig
from .errors import HubSpotError
from .gateway import Gateway
from .state import SandboxState
from .web import handle_error


def build_app(config: SandboxConfig) -> Starlette:
    app = Starlette(
        routes=[
            *routes_batch.routes,
            *routes_objects.routes,
            *routes_properties.routes,
            *routes_associations.routes,
            *routes_control.routes,
        ],
        middleware=[Middleware(Gateway)],
        exception_handlers={HubSpotError: handle_error},
    )
    app.state.sandbox = SandboxState(config)
    return app
