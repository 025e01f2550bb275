"""Checks and normalises property values the way HubSpot does before storing them.

Choices (HubSpot documents the accepted inputs, not every output form):
* JSON numbers and booleans are stringified (`17` -> "17", `true` -> "true"); objects
  and arrays are rejected like HubSpot's JSON binding rejects them.
* number: any decimal; stored canonical ("1e3" -> "1000", "10.50" -> "10.5").
* bool: "true"/"false" in any case, stored lower-case.
* date: "YYYY-MM-DD", epoch ms at UTC midnight, or an ISO datetime at UTC midnight;
  stored as "YYYY-MM-DD".
* datetime: ISO-8601 (naive means UTC), "YYYY-MM-DD", or epoch ms; stored as
  ISO-8601 UTC with milliseconds, e.g. "2024-05-01T09:30:00.000Z".
* contact email: must look like an address; stored lower-case, like HubSpot.
* "" clears a value (always valid); JSON null means "leave unchanged".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

from .errors import Issue, bad_request, validation_failed
from .schema import PropertyDef, TypeSchema

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EPOCH_MS = re.compile(r"^-?\d{1,16}$")


class InvalidValue(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def iso_ms(moment: datetime) -> str:
    """HubSpot's timestamp form: UTC, millisecond precision, `Z` suffix."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def stringify(name: str, raw: object) -> str | None:
    """JSON value -> HubSpot's string form; None stays None (the property is ignored)."""
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return str(raw)
    raise bad_request(
        f"Invalid input JSON: property {name} must be a string, number or boolean",
        propertyName=[name],
    )


def _number(value: str) -> str:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise InvalidValue("INVALID_FLOAT", f"{value} was not a valid number.")
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def _bool(value: str) -> str:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InvalidValue(
            "INVALID_OPTION", f"{value} was not one of the allowed options: [true, false]"
        )
    return lowered


def _parse_moment(value: str) -> datetime:
    text = value.strip()
    if _EPOCH_MS.match(text):
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue("INVALID_DATE", f"{value} is not a valid date or datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date(value: str) -> str:
    moment = _parse_moment(value).astimezone(UTC)
    if moment.timetz().replace(tzinfo=None) != time(0):
        raise InvalidValue(
            "INVALID_DATE", f"{value} is not at midnight UTC; date values must be whole days"
        )
    return date(moment.year, moment.month, moment.day).isoformat()


def _datetime(value: str) -> str:
    return iso_ms(_parse_moment(value))


def _email(value: str) -> str:
    cleaned = value.strip().lower()
    if not _EMAIL.match(cleaned):
        raise InvalidValue("INVALID_EMAIL", f"Email address {value} is invalid")
    return cleaned


def _enumeration(prop: PropertyDef) -> Callable[[str], str]:
    allowed = {option.value for option in prop.options}

    def check(value: str) -> str:
        if prop.external_options:
            return value
        for part in value.split(";"):
            if part not in allowed:
                raise InvalidValue(
                    "INVALID_OPTION",
                    f"{part} was not one of the allowed options: [{', '.join(sorted(allowed))}]",
                )
        return value

    return check


def _normaliser(schema: TypeSchema, prop: PropertyDef) -> Callable[[str], str]:
    if schema.info.name == "contacts" and prop.name == "email":
        return _email
    match prop.type:
        case "number":
            return _number
        case "bool":
            return _bool
        case "date":
            return _date
        case "datetime":
            return _datetime
        case "enumeration":
            return _enumeration(prop)
        case _:
            return str


def validate_properties(
    schema: TypeSchema, raw: object, portal_id: int, *, creating: bool
) -> dict[str, str]:
    """Normalised values to write ("" = clear); raises one VALIDATION_ERROR listing every
    bad property, as HubSpot does."""
    if not isinstance(raw, Mapping):
        raise bad_request("Invalid input JSON: properties must be an object")
    issues: list[Issue] = []
    clean: dict[str, str] = {}
    for name, given in raw.items():
        value = stringify(name, given)
        if value is None:
            continue
        prop = schema.properties.get(name)
        if prop is None:
            issues.append(Issue(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
        elif prop.read_only:
            issues.append(
                Issue(
                    name,
                    "READ_ONLY_VALUE",
                    f'"{name}" is a read only property; its value cannot be set.',
                )
            )
        elif value == "":
            clean[name] = ""
        else:
            try:
                clean[name] = _normaliser(schema, prop)(value)
            except InvalidValue as exc:
                issues.append(Issue(name, exc.code, str(exc)))
    if creating:
        issues.extend(
            Issue(name, "REQUIRED_PROPERTY", f'Property "{name}" is required')
            for name in sorted(schema.required)
            if not clean.get(name)
        )
    if issues:
        raise validation_failed(issues, portal_id)
    return clean


def check_value(schema: TypeSchema, name: str, value: str) -> str:
    """Normalise one lookup value (e.g. an `idProperty` id) without the read-only rule."""
    prop = schema.properties.get(name)
    if prop is None:
        return value
    try:
        return _normaliser(schema, prop)(value)
    except InvalidValue:
        return value
