"""Stripe error bodies (``{"error": {type, code, param, message}}``) -> `ApiError`."""

from __future__ import annotations

from collections.abc import Mapping

from ..base import ApiError, ErrorKind

_CODES = {
    "resource_missing": ErrorKind.NOT_FOUND,
    "parameter_unknown": ErrorKind.UNKNOWN_PROPERTY,
    "parameter_missing": ErrorKind.NOT_NULL,
    "resource_already_exists": ErrorKind.DUPLICATE,
    "rate_limit": ErrorKind.RATE_LIMITED,
    "lock_timeout": ErrorKind.LOCKED,
    "idempotency_key_in_use": ErrorKind.LOCKED,
}
_TYPES = {
    "idempotency_error": ErrorKind.IDEMPOTENCY,
    "card_error": ErrorKind.INVALID_VALUE,
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "authentication_error": ErrorKind.AUTH,
}
_STATUS = {
    401: ErrorKind.AUTH,
    403: ErrorKind.FORBIDDEN,
    404: ErrorKind.NOT_FOUND,
    429: ErrorKind.RATE_LIMITED,
}


def parse_error(status: int, body: Mapping[str, object], *, correlation_id: str | None) -> ApiError:
    error = body.get("error")
    error = error if isinstance(error, Mapping) else {}
    code = str(error.get("code") or "")
    kind_name = str(error.get("type") or "")
    kind = (
        _CODES.get(code)
        or _TYPES.get(kind_name)
        or _STATUS.get(status)
        or (ErrorKind.UNAVAILABLE if status >= 500 else ErrorKind.INVALID_VALUE)
    )
    param = error.get("param")
    column = str(param).split("[", 1)[0] if param else None
    message = str(error.get("message") or f"Stripe answered HTTP {status}")
    return ApiError(
        kind,
        message,
        http_status=status,
        vendor_request_id=correlation_id,
        vendor_code=code or kind_name or None,
        column=column,
    )
