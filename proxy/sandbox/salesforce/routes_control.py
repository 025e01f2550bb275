"""`/_sandbox/…`: not Salesforce's. Introspection, switches, faults and session expiry
for tests and demos; no auth. Same shapes as the other vendor sandboxes
(`{"results": [...]}` listings, 204 for clears)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..common.control import control_routes
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
    Route("/_sandbox/expire_tokens", expire_tokens, methods=["POST"]),
    *control_routes(sandbox, Switches, _bad),
]
