"""Request parsing and JSON responses shared by the route modules and the gateway."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from .errors import StripeError
from .formdata import Params, decode
from .state import SandboxState


def sandbox(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


async def read_params(request: Request) -> Params:
    """A POST's form body, or a GET's or DELETE's query string, decoded (cached)."""
    cached = getattr(request.state, "params", None)
    if isinstance(cached, dict):
        return cached
    if request.method == "POST":
        params = decode((await request.body()).decode("utf-8", "replace"))
    else:
        params = decode(request.url.query)
    request.state.params = params
    return params


def retry_header(exc: StripeError) -> dict[str, str]:
    if exc.should_retry is None:
        return {}
    return {"Stripe-Should-Retry": "true" if exc.should_retry else "false"}


def error_response(exc: StripeError, rid: str) -> JSONResponse:
    return JSONResponse(exc.body(rid), status_code=exc.status, headers=retry_header(exc))


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StripeError):
        raise exc
    return error_response(exc, request_id(request))
