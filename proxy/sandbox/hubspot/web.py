"""Request parsing and JSON responses shared by the route modules."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse

from .errors import HubSpotError, bad_request
from .state import SandboxState


def sandbox(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def correlation_id(request: Request) -> str:
    return str(getattr(request.state, "correlation_id", ""))


async def read_json(request: Request) -> dict[str, object]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise bad_request(
            f"Invalid input JSON on line {getattr(exc, 'lineno', 1)}: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise bad_request("Invalid input JSON: expected an object")
    return body


def query_list(request: Request, name: str) -> list[str] | None:
    """`?properties=a,b&properties=c` -> ["a", "b", "c"]; None when absent."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    return [part for value in values for part in value.split(",") if part]


def query_flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def error_response(exc: HubSpotError, cid: str) -> JSONResponse:
    return JSONResponse(exc.body(cid), status_code=exc.status)


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HubSpotError):
        raise exc
    return error_response(exc, correlation_id(request))
