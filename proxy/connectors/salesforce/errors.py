"""Salesforce error bodies -> `ApiError`.

Single-record calls answer ``[{"message", "errorCode", "fields"}]``; sObject Collections
answer per record ``{"success": false, "errors": [{"statusCode", "message", "fields"}]}``.
Duplicate rules add ``duplicateResult`` with the matching records' ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..base import ApiError, ErrorKind

CODES: dict[str, ErrorKind] = {
    "DUPLICATES_DETECTED": ErrorKind.DUPLICATE,
    "DUPLICATE_VALUE": ErrorKind.DUPLICATE,
    "DUPLICATE_EXTERNAL_ID": ErrorKind.DUPLICATE,
    "REQUIRED_FIELD_MISSING": ErrorKind.NOT_NULL,
    "INVALID_EMAIL_ADDRESS": ErrorKind.INVALID_VALUE,
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": ErrorKind.INVALID_VALUE,
    "STRING_TOO_LONG": ErrorKind.INVALID_VALUE,
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": ErrorKind.INVALID_VALUE,
    "INVALID_TYPE_ON_FIELD_IN_RECORD": ErrorKind.INVALID_VALUE,
    "JSON_PARSER_ERROR": ErrorKind.INVALID_VALUE,
    "NUMBER_OUTSIDE_VALID_RANGE": ErrorKind.INVALID_VALUE,
    "FIELD_INTEGRITY_EXCEPTION": ErrorKind.INVALID_VALUE,
    "INVALID_FIELD": ErrorKind.UNKNOWN_PROPERTY,
    "INVALID_FIELD_FOR_INSERT_UPDATE": ErrorKind.READ_ONLY_PROPERTY,
    "INVALID_CROSS_REFERENCE_KEY": ErrorKind.FOREIGN_KEY,
    "MALFORMED_ID": ErrorKind.FOREIGN_KEY,
    "ENTITY_IS_DELETED": ErrorKind.NOT_FOUND,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "INVALID_ID_FIELD": ErrorKind.NOT_FOUND,
    "INVALID_SESSION_ID": ErrorKind.AUTH,
    "INSUFFICIENT_ACCESS_OR_READONLY": ErrorKind.FORBIDDEN,
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": ErrorKind.FORBIDDEN,
    "REQUEST_LIMIT_EXCEEDED": ErrorKind.RATE_LIMITED,
    "UNABLE_TO_LOCK_ROW": ErrorKind.LOCKED,
    "SERVER_UNAVAILABLE": ErrorKind.UNAVAILABLE,
    "EXCEEDED_ID_LIMIT": ErrorKind.UNSUPPORTED,
}
_STATUS_KINDS = {
    401: ErrorKind.AUTH,
    403: ErrorKind.FORBIDDEN,
    404: ErrorKind.NOT_FOUND,
    409: ErrorKind.LOCKED,
}
ROLLED_BACK = "ALL_OR_NONE_OPERATION_ROLLED_BACK"


def parse_errors(status: int, body: object, *, correlation_id: str | None = None) -> ApiError:
    """A whole response's error (a list of errors, or OAuth's ``{error, ...}``)."""
    entries = [e for e in body if isinstance(e, Mapping)] if isinstance(body, list) else []
    if not entries and isinstance(body, Mapping):
        entries = [body]
    return from_entries(status, entries, correlation_id=correlation_id)


def from_entries(
    status: int | None,
    entries: Sequence[Mapping[str, object]],
    *,
    correlation_id: str | None = None,
    duplicate: Mapping[str, object] | None = None,
) -> ApiError:
    """One ApiError for a record's errors: the first one decides the kind; the
    messages are joined. Collections' entries name their code ``statusCode``."""
    first = entries[0] if entries else {}
    code = str(first.get("errorCode") or first.get("statusCode") or first.get("error") or "")
    kind = CODES.get(code) or _STATUS_KINDS.get(status or 0, ErrorKind.INVALID_VALUE)
    messages = [str(e.get("message") or e.get("error_description") or "") for e in entries]
    message = "; ".join(m for m in messages if m) or f"Salesforce answered HTTP {status}"
    fields = first.get("fields")
    column = str(fields[0]) if isinstance(fields, list) and fields else None
    existing = _existing_id(first.get("duplicateResult") or (duplicate or {}))
    if kind is ErrorKind.DUPLICATE and existing is None:
        existing = _id_in_message(message)
    return ApiError(
        kind,
        message,
        http_status=status,
        vendor_request_id=correlation_id,
        vendor_code=code or None,
        column=column,
        existing_id=existing,
        consequential=code == ROLLED_BACK,
    )


def record_error(result: Mapping[str, object], status: int | None) -> ApiError:
    """A failed record of an sObject Collections answer."""
    errors = result.get("errors")
    entries = [e for e in errors if isinstance(e, Mapping)] if isinstance(errors, list) else []
    return from_entries(status, entries)


def _existing_id(duplicate: object) -> str | None:
    """The first matching record of a duplicate rule's ``duplicateResult``."""
    if not isinstance(duplicate, Mapping):
        return None
    for match in duplicate.get("matchResults") or []:
        records = match.get("matchRecords") if isinstance(match, Mapping) else None
        for record in records or []:
            inner = record.get("record") if isinstance(record, Mapping) else None
            if isinstance(inner, Mapping) and inner.get("Id"):
                return str(inner["Id"])
    return None


def _id_in_message(message: str) -> str | None:
    """DUPLICATE_VALUE: "... duplicates value on record with id: 003…"."""
    marker = "record with id: "
    if marker not in message:
        return None
    return message.split(marker, 1)[1].split()[0].strip(".,;") or None
