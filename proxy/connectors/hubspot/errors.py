"""HubSpot error bodies -> `ApiError`, per DESIGN §5.

HubSpot's envelope is `{status, message, correlationId, category, errors[], context}`,
every field optional. Property problems arrive as `errors[].code` +
`context.propertyName`, or (older responses) only as JSON inside `message`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..base import ApiError, ErrorKind

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
_EMBEDDED = "Property values were not valid: "

_PROPERTY_CODES = {
    "PROPERTY_DOESNT_EXIST": ErrorKind.UNKNOWN_PROPERTY,
    "READ_ONLY_VALUE": ErrorKind.READ_ONLY_PROPERTY,
    "REQUIRED_PROPERTY": ErrorKind.NOT_NULL,
}
_STATUS_KINDS = {
    401: ErrorKind.AUTH,
    403: ErrorKind.FORBIDDEN,
    404: ErrorKind.NOT_FOUND,
    409: ErrorKind.DUPLICATE,
    423: ErrorKind.UNAVAILABLE,
    429: ErrorKind.RATE_LIMITED,
}
_CATEGORY_KINDS = {
    "CONFLICT": ErrorKind.DUPLICATE,
    "OBJECT_NOT_FOUND": ErrorKind.NOT_FOUND,
    "RATE_LIMITS": ErrorKind.RATE_LIMITED,
    "INVALID_AUTHENTICATION": ErrorKind.AUTH,
    "MISSING_SCOPES": ErrorKind.FORBIDDEN,
}


@dataclass(frozen=True)
class _Issue:
    code: str
    name: str | None
    message: str


def _issues(body: Mapping[str, object]) -> list[_Issue]:
    found: list[_Issue] = []
    entries = body.get("errors")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping):
            code = str(entry.get("code", ""))
            text = str(entry.get("message") or code or "invalid property value")
            found.append(_Issue(code, _context_name(entry), text))
    message = str(body.get("message", ""))
    if not found and message.startswith(_EMBEDDED):
        try:
            verdicts = json.loads(message.removeprefix(_EMBEDDED))
        except ValueError:
            verdicts = []
        if not isinstance(verdicts, list):
            verdicts = []
        found = [
            _Issue(
                str(v.get("error", "")),
                v.get("name"),
                str(v.get("message") or v.get("error") or "invalid property value"),
            )
            for v in verdicts
            if isinstance(v, Mapping)
        ]
    return found


def _context_name(body: Mapping[str, object]) -> str | None:
    context = body.get("context")
    names = context.get("propertyName") if isinstance(context, Mapping) else None
    return str(names[0]) if isinstance(names, list) and names else None


def parse_error(
    status: int,
    body: Mapping[str, object],
    *,
    object_type: str,
    correlation_id: str | None = None,
) -> ApiError:
    """Turn one error (a whole response, or one entry of a 207 `errors` list) into an
    ApiError. Retry-related kinds for 5xx are decided by the client, not here."""
    category = str(body.get("category") or "")
    message = str(body.get("message") or f"HubSpot answered HTTP {status}")
    issues = _issues(body)
    kind = _CATEGORY_KINDS.get(category) or _STATUS_KINDS.get(status, ErrorKind.INVALID_VALUE)
    column = _context_name(body)
    vendor_code = category or None
    if issues and kind is ErrorKind.INVALID_VALUE:
        first = issues[0]
        kind = _PROPERTY_CODES.get(first.code, ErrorKind.INVALID_VALUE)
        column, vendor_code = first.name, first.code
        message = "; ".join(issue.message for issue in issues)
    existing = _EXISTING_ID.search(message) if kind is ErrorKind.DUPLICATE else None
    if existing and column is None and object_type in ("contacts", "contact", "0-1"):
        column = "email"  # HubSpot's one built-in unique contact property
    return ApiError(
        kind,
        message,
        http_status=status,
        vendor_request_id=str(body.get("correlationId") or correlation_id or "") or None,
        vendor_code=vendor_code,
        column=column,
        existing_id=existing.group(1) if existing else None,
    )
