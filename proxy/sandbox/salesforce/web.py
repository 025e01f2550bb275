"""Request parsing and responses shared by the route modules."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import SalesforceError, fail, json_parser, not_found, unsupported_type
from .schema import SObjectSchema
from .state import SalesforceState

# Newest last; `GET /services/data/` lists them.
VERSIONS = ("58.0", "59.0", "60.0", "61.0", "62.0")
RELEASES = {
    "58.0": "Summer '23",
    "59.0": "Winter '24",
    "60.0": "Spring '24",
    "61.0": "Summer '24",
    "62.0": "Winter '25",
}


def sandbox(request: Request) -> SalesforceState:
    state: SalesforceState = request.app.state.sandbox
    return state


def version(request: Request) -> str:
    """The path's API version without its `v` (the gateway already checked it)."""
    return str(request.path_params["version"]).removeprefix("v")


def schema_for(request: Request, *, query_style: bool = False) -> SObjectSchema:
    """The path's `{type}`. Unknown types are 404 NOT_FOUND on resource paths (or 400
    INVALID_TYPE where Salesforce parses the type from a body or query)."""
    name = str(request.path_params["type"])
    found = sandbox(request).store.catalog.get(name)
    if found is None:
        raise unsupported_type(name) if query_style else not_found()
    return found


async def read_json(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        raise json_parser("No content to map due to end-of-input")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise json_parser(f"Unexpected character: {exc}") from None


async def read_object(request: Request) -> dict[str, object]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise json_parser("Cannot deserialize instance of SObject from START_ARRAY value [")
    return body


def flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def csv_param(request: Request, name: str) -> list[str] | None:
    values = request.query_params.getlist(name)
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def json_response(body: object, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def error_response(exc: SalesforceError) -> JSONResponse:
    return json_response(exc.body(), exc.status)


async def handle_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, SalesforceError):
        raise exc
    return error_response(exc)


async def handle_http(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in Salesforce's shape."""
    if not isinstance(exc, HTTPException):
        raise exc
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "").replace(" ", "")
        message = f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}"
        error = fail(405, "METHOD_NOT_ALLOWED", message)
    elif exc.status_code == 404:
        error = not_found()
    else:
        error = fail(exc.status_code, "UNKNOWN_EXCEPTION", str(exc.detail))
    return error_response(error)
