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


def encode_fields(row: Mapping[str, object], *, clearing: bool) -> dict[str, object]:
    encoded: dict[str, object] = {}
    for name, value in row.items():
        if value is None and not clearing:
            continue
        try:
            encoded[name] = encode_value(value)
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
