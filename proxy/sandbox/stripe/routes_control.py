"""`/_sandbox/…`: not Stripe's. Introspection and switches for tests and demos, the same
shape as the other vendor sandboxes' control APIs."""

from __future__ import annotations

import json

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..common.faults import FaultSpec
from . import errors
from .config import Switches
from .routes_api import BY_NAME
from .store import render
from .web import sandbox


async def _read_json(request: Request) -> dict[str, object]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise errors.invalid(f"Invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise errors.invalid("Invalid JSON body: expected an object")
    return body


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


async def list_requests(request: Request) -> Response:
    entries = sandbox(request).log.entries(
        request.query_params.get("method"), request.query_params.get("path_regex")
    )
    return JSONResponse({"results": entries})


async def clear_requests(request: Request) -> Response:
    sandbox(request).log.clear()
    return Response(status_code=204)


async def reset(request: Request) -> Response:
    sandbox(request).reset()
    return Response(status_code=204)


async def get_config(request: Request) -> Response:
    return JSONResponse(sandbox(request).switches.model_dump())


async def set_config(request: Request) -> Response:
    """Partial update: only the switches named in the body change."""
    state = sandbox(request)
    changes = await _read_json(request)
    try:
        switches = Switches.model_validate(state.switches.model_dump() | changes)
    except ValidationError as exc:
        raise errors.invalid(f"Invalid sandbox config: {exc.errors(include_url=False)}") from None
    state.set_switches(switches)
    return JSONResponse(switches.model_dump())


async def add_fault(request: Request) -> Response:
    try:
        spec = FaultSpec.model_validate(await _read_json(request))
    except ValidationError as exc:
        raise errors.invalid(f"Invalid fault: {exc.errors(include_url=False)}") from None
    return JSONResponse(sandbox(request).faults.add(spec).to_json(), status_code=201)


async def list_faults(request: Request) -> Response:
    return JSONResponse({"results": [f.to_json() for f in sandbox(request).faults.armed()]})


async def clear_faults(request: Request) -> Response:
    sandbox(request).faults.clear()
    return Response(status_code=204)


routes = [
    Route("/_sandbox/objects/{type}", dump_objects, methods=["GET"]),
    Route("/_sandbox/requests", list_requests, methods=["GET"]),
    Route("/_sandbox/requests", clear_requests, methods=["DELETE"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
    Route("/_sandbox/config", get_config, methods=["GET"]),
    Route("/_sandbox/config", set_config, methods=["POST"]),
    Route("/_sandbox/faults", add_fault, methods=["POST"]),
    Route("/_sandbox/faults", list_faults, methods=["GET"]),
    Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
]
