"""Field values as Salesforce's JSON binding and save-time checks treat them.

Binding (`bind`) happens while the request body is parsed, so its failures
(JSON_PARSER_ERROR, unknown field) reject the whole call, collections included:
* text types take strings; numbers and booleans are stringified, objects/arrays refused;
* numbers take JSON numbers or numeric strings (Salesforce's parser coerces them);
  int refuses fractions;
* boolean takes true/false or the strings "true"/"false";
* date takes "YYYY-MM-DD"; datetime takes ISO-8601 ("Z", "+00:00", "+0000", with or
  without seconds and fractions, or a bare date) and is stored in UTC as
  "2026-12-01T03:19:51.000+0000", the form the API returns;
* null and "" clear a field.

Save-time checks (`check`) fail only the record: length, email syntax, restricted
picklist values and numeric range, each naming the field by its label as Salesforce does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import ApiError, SalesforceError, json_parser, no_such_column
from .schema import NUMBER_TYPES, TEXT_TYPES, FieldDef, SObjectSchema

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*\.)+[A-Za-z]{2,}$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?$"
)


def sf_datetime(moment: datetime) -> str:
    """The API's datetime form: UTC, milliseconds, `+0000`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> str | None:
    match = _DATETIME.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=_zone(zone),
        )
    except ValueError:
        return None
    return sf_datetime(moment)


def _zone(text: str | None) -> timezone:
    if not text or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def parse_date(text: str) -> str | None:
    if not _DATE.match(text):
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return None


def _token(raw: object) -> tuple[str, str]:
    """Jackson's token name for a JSON value, and how its message quotes the value."""
    if isinstance(raw, bool):
        return ("VALUE_TRUE" if raw else "VALUE_FALSE"), str(raw).lower()
    if isinstance(raw, int):
        return "VALUE_NUMBER_INT", str(raw)
    if isinstance(raw, float):
        return "VALUE_NUMBER_FLOAT", repr(raw)
    if isinstance(raw, dict):
        return "START_OBJECT", "{"
    if isinstance(raw, list):
        return "START_ARRAY", "["
    return "VALUE_STRING", str(raw)


def _cannot_bind(field: FieldDef, raw: object) -> SalesforceError:
    token, shown = _token(raw)
    return json_parser(
        f"Cannot deserialize instance of {field.type} from {token} value {shown} "
        "or request may be missing a required field"
    )


def _number(field: FieldDef, raw: object) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _cannot_bind(field, raw)
    try:
        number = Decimal(str(raw).strip())
    except InvalidOperation:
        raise _cannot_bind(field, raw) from None
    if not number.is_finite():
        raise _cannot_bind(field, raw)
    if field.type == "int":
        if number != number.to_integral_value():
            raise _cannot_bind(field, raw)
        return int(number)
    return float(number)


def bind(field: FieldDef, raw: object) -> object:
    """The stored form of one JSON value (None clears)."""
    if raw is None or raw == "":
        return None
    if field.type in TEXT_TYPES:
        if isinstance(raw, dict | list):
            raise _cannot_bind(field, raw)
        if isinstance(raw, bool):
            return "true" if raw else "false"
        return str(raw)
    if field.type in NUMBER_TYPES:
        return _number(field, raw)
    if field.type == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise _cannot_bind(field, raw)
    parsed = None
    if isinstance(raw, str):
        parsed = parse_date(raw) if field.type == "date" else parse_datetime(raw)
    if parsed is None:
        raise _cannot_bind(field, raw)
    return parsed


def bind_record(
    schema: SObjectSchema, body: Mapping[str, object], skip: tuple[str, ...] = ("attributes",)
) -> dict[str, object]:
    """Canonical field name -> bound value for a record body; unknown names fail the call."""
    bound: dict[str, object] = {}
    for name, raw in body.items():
        if name in skip:
            continue
        found = schema.field(name)
        if found is None:
            raise no_such_column(name, schema.name)
        bound[found.name] = bind(found, raw)
    return bound


def check(field: FieldDef, value: object) -> tuple[object, ApiError | None]:
    """A bound value as it will be saved (numbers rounded to the field's scale), or the
    save-time error it earns."""
    if value is None:
        return None, None
    label, fields = field.label, [field.name]
    if isinstance(value, str):
        if field.length and len(value) > field.length:
            message = f"{label}: data value too large: {value} (max length={field.length})"
            return value, ApiError("STRING_TOO_LONG", message, fields)
        if field.type == "email" and not _EMAIL.match(value):
            message = f"{label}: invalid email address: {value}"
            return value, ApiError("INVALID_EMAIL_ADDRESS", message, fields)
        if field.type == "picklist" and field.restricted and value not in field.picklist:
            message = f"{label}: bad value for restricted picklist field: {value}"
            return value, ApiError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", message, fields)
        return value, None
    if field.type in NUMBER_TYPES and isinstance(value, int | float):
        return _in_range(field, value)
    return value, None


def _in_range(field: FieldDef, value: int | float) -> tuple[object, ApiError | None]:
    whole_digits = field.digits or (field.precision - field.scale)
    if whole_digits and abs(value) >= 10**whole_digits:
        message = f"{field.label}: value outside of valid range on numeric field: {value}"
        return value, ApiError("NUMBER_OUTSIDE_VALID_RANGE", message, [field.name])
    if field.type != "int":
        quantum = Decimal(1).scaleb(-field.scale)
        value = float(Decimal(str(value)).quantize(quantum, rounding=ROUND_HALF_UP))
    return value, None
