"""The path every API request takes before its route: correlation id, request log, auth,
rate limit, latency, injected faults. `/_sandbox/` requests only get a correlation id."""

from __future__ import annotations

import asyncio
import hmac
from uuid import uuid4

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..common.faults import ArmedFault
from .errors import rate_limited, unauthorized
from .faults import fault_body
from .limits import limit_headers
from .state import SandboxState
from .web import error_response, sandbox

CONTROL_PREFIX = "/_sandbox/"
CORRELATION_HEADER = "X-HubSpot-Correlation-Id"


class Gateway(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        cid = str(uuid4())
        request.state.correlation_id = cid
        if request.url.path.startswith(CONTROL_PREFIX):
            response = await call_next(request)
            response.headers[CORRELATION_HEADER] = cid
            return response
        state = sandbox(request)
        entry = state.log.arrived(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            body=await request.body(),
            correlation_id=cid,
        )
        response, fault = await _process(request, call_next, state, cid)
        response.headers[CORRELATION_HEADER] = cid
        state.log.answered(entry, response.status_code, fault.id if fault else None)
        return response


async def _process(
    request: Request, call_next: RequestResponseEndpoint, state: SandboxState, cid: str
) -> tuple[Response, ArmedFault | None]:
    if not _authorized(request, state.config.token):
        return error_response(unauthorized(), cid), None
    headers: dict[str, str] = {}
    limit = state.switches.rate_limit
    if limit is not None:
        admitted, remaining = state.window.admit(limit.max_requests, limit.window_s)
        headers = limit_headers(limit, remaining)
        if not admitted:
            rejected = error_response(rate_limited(limit.policy, state.config.portal_id), cid)
            if limit.retry_after_s is not None:
                headers["Retry-After"] = f"{limit.retry_after_s:g}"
            rejected.headers.update(headers)
            return rejected, None
    if state.switches.latency_ms:
        await asyncio.sleep(state.switches.latency_ms / 1000)
    fault = state.faults.take(request.method, request.url.path)
    response = await _with_fault(request, call_next, fault, state, cid)
    response.headers.update(headers)
    return response, fault


async def _with_fault(
    request: Request,
    call_next: RequestResponseEndpoint,
    fault: ArmedFault | None,
    state: SandboxState,
    cid: str,
) -> Response:
    if fault is None:
        return await call_next(request)
    spec = fault.spec
    applied = await call_next(request) if spec.apply else None
    await asyncio.sleep(spec.delay_ms / 1000)
    if spec.status is None:
        return applied if applied is not None else await call_next(request)
    if applied is not None:
        await _drain(applied)
    body = fault_body(spec, cid, state.config.portal_id)
    return JSONResponse(body, status_code=spec.status, headers=spec.headers)


async def _drain(response: Response) -> None:
    """Consume a discarded downstream response so its producer task can finish."""
    body_iterator = getattr(response, "body_iterator", None)
    if body_iterator is not None:
        async for _ in body_iterator:
            pass


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
