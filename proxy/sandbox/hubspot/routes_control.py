"""`/_sandbox/…`: not HubSpot's. Introspection and switches for tests and demos."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..common.faults import FaultSpec
from .config import Switches
from .errors import bad_request
from .model import render
from .web import query_flag, read_json, sandbox


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
    changes = await read_json(request)
    try:
        switches = Switches.model_validate(state.switches.model_dump() | changes)
    except ValidationError as exc:
        raise bad_request(f"Invalid sandbox config: {exc.errors(include_url=False)}") from None
    state.set_switches(switches)
    return JSONResponse(switches.model_dump())


async def add_fault(request: Request) -> Response:
    try:
        spec = FaultSpec.model_validate(await read_json(request))
    except ValidationError as exc:
        raise bad_request(f"Invalid fault: {exc.errors(include_url=False)}") from None
    return JSONResponse(sandbox(request).faults.add(spec).to_json(), status_code=201)


async def list_faults(request: Request) -> Response:
    return JSONResponse({"results": [f.to_json() for f in sandbox(request).faults.armed()]})


async def clear_faults(request: Request) -> Response:
    sandbox(request).faults.clear()
    return Response(status_code=204)


routes = [
    Route("/_sandbox/objects/{type}", dump_objects, methods=["GET"]),
    Route("/_sandbox/associations", dump_associations, methods=["GET"]),
    Route("/_sandbox/requests", list_requests, methods=["GET"]),
    Route("/_sandbox/requests", clear_requests, methods=["DELETE"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
    Route("/_sandbox/config", get_config, methods=["GET"]),
    Route("/_sandbox/config", set_config, methods=["POST"]),
    Route("/_sandbox/faults", add_fault, methods=["POST"]),
    Route("/_sandbox/faults", list_faults, methods=["GET"]),
    Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
]
