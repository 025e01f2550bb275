"""The path every request takes before its route: request id and request log for all
but `/_sandbox/` requests, then for API calls bearer auth (INVALID_SESSION_ID), the API
request limit (REQUEST_LIMIT_EXCEEDED, `Sforce-Limit-Info` on every answer) and the
version check; then latency and injected faults for API and OAuth calls alike.
`GET /services/data/` (the version list) needs no auth and counts against no limit, as
in Salesforce."""

from __future__ import annotations

import asyncio
import re
from uuid import uuid4

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..common.faults import ArmedFault
from .errors import invalid_session, not_found, request_limit
from .faults import fault_body
from .state import SalesforceState
from .web import VERSIONS, error_response, sandbox

CONTROL_PREFIX = "/_sandbox/"
OAUTH_PREFIX = "/services/oauth2/"
# Salesforce documents no request id header; this one is the sandbox's.
REQUEST_ID_HEADER = "X-Request-Id"
LIMIT_HEADER = "Sforce-Limit-Info"
_VERSION = re.compile(r"^/services/data/v([^/]+)(?:/|$)")


class Gateway(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        request_id = uuid4().hex
        request.state.request_id = request_id
        if request.url.path.startswith(CONTROL_PREFIX):
            response = await call_next(request)
        else:
            state = sandbox(request)
            entry = state.log.arrived(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                body=await request.body(),
                correlation_id=request_id,
            )
            response, fault = await _process(request, call_next, state)
            state.log.answered(entry, response.status_code, fault.id if fault else None)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response


async def _process(
    request: Request, call_next: RequestResponseEndpoint, state: SalesforceState
) -> tuple[Response, ArmedFault | None]:
    path = request.url.path
    oauth = path.startswith(OAUTH_PREFIX)
    headers: dict[str, str] = {}
    if not oauth and path.rstrip("/") != "/services/data":
        if not state.tokens.valid(_bearer(request)):
            return error_response(invalid_session()), None
        admitted, usage = state.admit()
        headers[LIMIT_HEADER] = usage
        if not admitted:
            return _with_headers(error_response(request_limit()), headers), None
        match = _VERSION.match(path)
        if path.startswith("/services/data/") and (not match or match[1] not in VERSIONS):
            return _with_headers(error_response(not_found()), headers), None
    if state.switches.latency_ms:
        await asyncio.sleep(state.switches.latency_ms / 1000)
    fault = state.faults.take(request.method, path)
    response = await _answer(request, call_next, fault, oauth)
    return _with_headers(response, headers), fault


async def _answer(
    request: Request, call_next: RequestResponseEndpoint, fault: ArmedFault | None, oauth: bool
) -> Response:
    if fault is None:
        return await call_next(request)
    spec = fault.spec
    applied = await call_next(request) if spec.apply else None
    await asyncio.sleep(spec.delay_ms / 1000)
    if spec.status is None:
        return applied if applied is not None else await call_next(request)
    if applied is not None:
        await _discard(applied)
    return JSONResponse(
        fault_body(spec, oauth=oauth), status_code=spec.status, headers=spec.headers
    )


async def _discard(response: Response) -> None:
    """Reads a response we will not send, so the route's streaming task completes."""
    body = getattr(response, "body_iterator", None)
    if body is not None:
        async for _chunk in body:
            pass


def _with_headers(response: Response, headers: dict[str, str]) -> Response:
    response.headers.update(headers)
    return response


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    # Salesforce also accepts the legacy "OAuth <token>" scheme.
    return token.strip() if scheme.lower() in ("bearer", "oauth") else ""
