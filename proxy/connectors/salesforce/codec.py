"""Row values <-> Salesforce field values (typed JSON).

Encoding: numbers stay numbers with every digit (Decimal), booleans booleans, text
text; dates and timestamps are the ISO strings PostgreSQL writes (Salesforce reads
ISO 8601); a text[] column is a multi-select picklist (";"-joined); None is left out
of a create (Salesforce applies the field's default) and sent as null by an update
(which clears the field).
Decoding: a record's fields as the local columns read them; Salesforce's datetimes
("2026-12-01T03:19:51.000+0000") get a colon in the offset so every reader parses them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

from ..base import ApiError, ErrorKind

_SF_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{2})(\d{2})$")


def encode_value(value: object) -> object:
    match value:
        case bool() | int() | str() | None:
            return value
        case float() if math.isfinite(value):
            return Decimal(repr(value))
        case Decimal() if value.is_finite():
            return value
        case datetime() | date():
            return value.isoformat()
        case list() | tuple():
            return ";".join(str(encode_value(item)) for item in value if item is not None)
    raise TypeError(f"cannot send a {type(value).__name__} value to Salesforce")


_NUMBERS = ("double", "currency", "percent")
_TEXT = ("string", "textarea", "email", "phone", "url", "picklist", "reference", "id", "combobox")


def as_field_type(value: object, field_type: str | None) -> object:
    """A value as the describe says its field takes it (a text column holding "42" for
    an int field is sent as 42; a number for a text field as its digits). A value
    that does not convert is sent as it is, for Salesforce to reject by name."""
    if value is None or field_type is None:
        return value
    try:
        if field_type == "int" and isinstance(value, str | Decimal):
            number = Decimal(value)
            return int(number) if number == number.to_integral_value() else value
        if field_type in _NUMBERS and isinstance(value, str):
            return Decimal(value)
        if field_type == "boolean" and isinstance(value, str):
            lowered = value.strip().lower()
            return {"true": True, "t": True, "false": False, "f": False}.get(lowered, value)
    except ArithmeticError:  # decimal.InvalidOperation: not a number
        return value
    if field_type in _TEXT and isinstance(value, bool):
        return "true" if value else "false"
    if field_type in _TEXT and isinstance(value, int | Decimal):
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    return value


def encode_fields(
    row: Mapping[str, object],
    *,
    clearing: bool,
    types: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """``types``: field -> describe type, when known."""
    encoded: dict[str, object] = {}
    for name, value in row.items():
        if value is None and not clearing:
            continue
        try:
            encoded[name] = as_field_type(encode_value(value), (types or {}).get(name))
        except (TypeError, ValueError) as exc:
            raise ApiError(ErrorKind.UNSUPPORTED, str(exc), column=name) from None
    return encoded


def decode_value(value: object) -> object:
    if isinstance(value, str):
        match = _SF_DATETIME.match(value)
        if match:
            return f"{match.group(1)}{match.group(2)}:{match.group(3)}"
    return value


def decode_record(record: Mapping[str, object]) -> dict[str, object]:
    """A record's fields (``attributes`` and nested relationship objects left out)."""
    return {
        name: decode_value(value)
        for name, value in record.items()
        if name != "attributes" and not isinstance(value, Mapping)
    }
