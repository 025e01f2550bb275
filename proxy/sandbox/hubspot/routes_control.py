"""`/_sandbox/…`: not HubSpot's. Introspection and switches for tests and demos."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..common.control import control_routes
from .config import Switches
from .errors import bad_request
from .model import render
from .web import query_flag, sandbox


async def dump_objects(request: Request) -> Response:
    """Every live (or, with `?archived=true`, archived) object with all its values."""
    store = sandbox(request).store
    type_name = request.path_params["type"]
    schema = store.schema(type_name)
    objects = store.objects(type_name, archived=query_flag(request, "archived"))
    return JSONResponse({"results": [render(o, schema, everything=True) for o in objects]})


async def dump_associations(request: Request) -> Response:
    """Every association between live objects (each appears once per direction)."""
    edges = sandbox(request).store.edges()
    return JSONResponse(
        {
            "results": [
                {
                    "fromObjectType": e.from_type,
                    "fromId": e.from_id,
                    "toObjectType": e.to_type,
                    "toId": e.to_id,
                    "typeId": e.type_id,
                }
                for e in edges
            ]
        }
    )


routes = [
    Route("/_sandbox/objects/{type}", dump_objects, methods=["GET"]),
    Route("/_sandbox/associations", dump_associations, methods=["GET"]),
    *control_routes(sandbox, Switches, bad_request),
]
