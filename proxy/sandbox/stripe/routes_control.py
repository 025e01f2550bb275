"""`/_sandbox/…`: not Stripe's. Introspection and switches for tests and demos, the same
shape as the other vendor sandboxes' control APIs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..common.control import control_routes
from . import errors
from .config import Switches
from .routes_api import BY_NAME
from .store import render
from .web import sandbox


async def dump_objects(request: Request) -> Response:
    """Every live object of a type, oldest first (with `?deleted=true`, the deleted ones
    as they were when deleted, marked `deleted: true`)."""
    type_name = request.path_params["type"]
    if type_name not in BY_NAME:
        raise errors.invalid(
            f"Unknown object type: {type_name} (one of {', '.join(BY_NAME)})", status=404
        )
    deleted = request.query_params.get("deleted", "false").lower() == "true"
    objects = sandbox(request).store.objects(type_name, deleted=deleted)
    shown = [render(o) | ({"deleted": True} if deleted else {}) for o in reversed(objects)]
    return JSONResponse({"results": shown})


routes = [
    Route("/_sandbox/objects/{type}", dump_objects, methods=["GET"]),
    *control_routes(sandbox, Switches, errors.invalid),
]
