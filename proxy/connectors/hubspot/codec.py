"""SQL-side values <-> HubSpot property strings.

Encoding: bool -> "true"/"false"; numbers without float noise (0.1 -> "0.1", 2.0 -> "2");
date -> "YYYY-MM-DD"; datetime, or a string that looks like one (Postgres text or JSON
output such as "2024-05-01 10:00:00+02"), -> ISO-8601 UTC with ms; lists (multi-select
enumerations) -> ";"-joined; anything else (a JSON object) is UNSUPPORTED. On create,
None is left out; on update it becomes "" (clear).
Decoding: HubSpot's strings pass through for Postgres to cast; "" and missing -> None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

from ..base import ApiError, ErrorKind

_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)


def _iso_ms(moment: datetime) -> str:
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    # isoformat, unlike strftime("%Y"), pads years before 1000 to four digits.
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _decimal(number: Decimal) -> str:
    """Plain notation without trailing zeros, exact at any precision (no context
    rounding, unlike Decimal.normalize)."""
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def encode_value(value: object) -> str:
    match value:
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float() if math.isfinite(value):
            return _decimal(Decimal(repr(value)))
        case Decimal() if value.is_finite():
            return _decimal(value)
        case datetime():
            return _iso_ms(value)
        case date():
            return value.isoformat()
        case str() if _TIMESTAMP.match(value):
            return _iso_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
        case str():
            return value
        case list() | tuple():
            return ";".join(encode_value(item) for item in value)
    raise TypeError(f"cannot send a {type(value).__name__} value to HubSpot")


def encode_properties(row: Mapping[str, object], *, clearing: bool) -> dict[str, str]:
    """Property map for the wire; `clearing` (updates) sends None as "" to clear it."""
    encoded: dict[str, str] = {}
    for name, value in row.items():
        if value is None:
            if clearing:
                encoded[name] = ""
            continue
        try:
            encoded[name] = encode_value(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ApiError(ErrorKind.UNSUPPORTED, str(exc), column=name) from None
    return encoded


def decode_properties(properties: Mapping[str, object]) -> dict[str, object]:
    return {
        name: (str(value) if value not in (None, "") else None)
        for name, value in properties.items()
    }
