"""Stripe's rendering of an injected fault (the fault book is shared by all sandboxes):
the error Stripe itself answers with for the status, unless the fault brings a body."""

from __future__ import annotations

from starlette.responses import JSONResponse

from ..common.faults import FaultSpec
from . import errors
from .web import retry_header


def fault_error(status: int) -> errors.StripeError:
    if status == 429:
        return errors.rate_limited()
    if status == 409:
        return errors.lock_timeout()
    if status == 402:
        return errors.card_declined()
    if status == 401:
        return errors.unauthorized(None)
    if status >= 500:
        return errors.api_error(status)
    error = errors.invalid(f"Injected fault: HTTP {status}", status=status)
    if status == 404:
        error.code = "resource_missing"
    return error


def fault_response(spec: FaultSpec, request_id: str) -> JSONResponse:
    status = spec.status or 500
    error = fault_error(status)
    body = spec.body if spec.body is not None else error.body(request_id)
    headers = {**retry_header(error), **spec.headers}
    return JSONResponse(body, status_code=status, headers=headers)
