"""`/_sandbox/…`: not Salesforce's. Introspection, switches, faults and session expiry
for tests and demos; no auth. Same shapes as the other vendor sandboxes
(`{"results": [...]}` listings, 204 for clears)."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..common.faults import FaultSpec
from .config import Switches
from .errors import fail
from .store import render
from .web import VERSIONS, flag, json_response, read_json, sandbox, schema_for


def _bad(message: str) -> Exception:
    return fail(400, "INVALID_SANDBOX_REQUEST", message)


async def dump_objects(request: Request) -> Response:
    """Every live record of a type (or, with `?deleted=true`, the recycle bin), all fields."""
    state, schema = sandbox(request), schema_for(request)
    records = state.store.records(schema.name, deleted=flag(request, "deleted"))
    return json_response({"results": [render(r, schema, VERSIONS[-1]) for r in records]})


async def list_requests(request: Request) -> Response:
    entries = sandbox(request).log.entries(
        request.query_params.get("method"), request.query_params.get("path_regex")
    )
    return json_response({"results": entries})


async def clear_requests(request: Request) -> Response:
    sandbox(request).log.clear()
    return Response(status_code=204)


async def reset(request: Request) -> Response:
    sandbox(request).reset()
    return Response(status_code=204)


async def get_config(request: Request) -> Response:
    return json_response(sandbox(request).switches.model_dump())


async def set_config(request: Request) -> Response:
    """Partial update: only the switches named in the body change."""
    state = sandbox(request)
    changes = await read_json(request)
    if not isinstance(changes, dict):
        raise _bad("Invalid sandbox config: expected an object")
    try:
        switches = Switches.model_validate(state.switches.model_dump() | changes)
    except ValidationError as exc:
        raise _bad(f"Invalid sandbox config: {exc.errors(include_url=False)}") from None
    state.set_switches(switches)
    return json_response(switches.model_dump())


async def add_fault(request: Request) -> Response:
    try:
        spec = FaultSpec.model_validate(await read_json(request))
    except ValidationError as exc:
        raise _bad(f"Invalid fault: {exc.errors(include_url=False)}") from None
    return json_response(sandbox(request).faults.add(spec).to_json(), 201)


async def list_faults(request: Request) -> Response:
    return json_response({"results": [f.to_json() for f in sandbox(request).faults.armed()]})


async def clear_faults(request: Request) -> Response:
    sandbox(request).faults.clear()
    return Response(status_code=204)


async def expire_tokens(request: Request) -> Response:
    """Ends every issued session; `{"static": true}` also refuses the static tokens
    until reset. Clients' next calls get INVALID_SESSION_ID."""
    raw = await request.body()
    body = await read_json(request) if raw.strip() else {}
    static = isinstance(body, dict) and body.get("static") is True
    expired = sandbox(request).tokens.expire(static=static)
    return json_response({"expired": expired, "static": static})


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
    Route("/_sandbox/expire_tokens", expire_tokens, methods=["POST"]),
]
