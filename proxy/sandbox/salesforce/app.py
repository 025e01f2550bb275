"""Assembles the Salesforce emulator: routes, the gateway middleware, error rendering."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from . import (
    routes_collections,
    routes_control,
    routes_meta,
    routes_oauth,
    routes_query,
    routes_sobjects,
)
from .config import SalesforceSandboxConfig
from .errors import SalesforceError
from .gateway import Gateway
from .state import SalesforceState
from .web import handle_error, handle_http


def build_app(config: SalesforceSandboxConfig | None = None) -> Starlette:
    app = Starlette(
        routes=[
            *routes_meta.routes,
            *routes_oauth.routes,
            *routes_sobjects.routes,
            *routes_collections.routes,
            *routes_query.routes,
            *routes_control.routes,
        ],
        middleware=[Middleware(Gateway)],
        exception_handlers={SalesforceError: handle_error, HTTPException: handle_http},
    )
    app.state.sandbox = SalesforceState(config or SalesforceSandboxConfig())
    return app
