"""Row values <-> Stripe's form-encoded parameters and JSON objects.

Encoding: nested objects become bracket keys (``metadata[plan]=pro``,
``recurring[interval]=month``), lists indexed ones (``preferred_locales[0]=en``);
booleans ``true``/``false``; exact numbers as written; a timestamp for a unix-time
field (``redeem_by``) as seconds; None is left out of a create and sent as ``""`` by an
update (Stripe's "unset"). Decoding: unix times become ISO timestamps for the local
timestamp columns; nested objects stay JSON for jsonb columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

from ..base import ApiError, ErrorKind
from .objects import UNIX_TIME_FIELDS


class BadTimestamp(ValueError):
    """A unix-time field's value is not an instant Stripe can hold."""


def param_value(name: str, value: object) -> object:
    """One top-level field's value as Stripe takes it (still nested; see ``form``).
    Only a top-level unix-time field is converted: a metadata key that happens to be
    called ``created`` holds whatever text it was given."""
    if name in UNIX_TIME_FIELDS and isinstance(value, int | str) and value != "":
        return _unix(value)
    return _nested(value)


def _nested(value: object) -> object:
    match value:
        case None:
            return ""
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float() if math.isfinite(value):
            return format(Decimal(repr(value)), "f")
        case Decimal() if value.is_finite():
            return format(value, "f")
        case str():
            return value
        case datetime() | date():
            return value.isoformat()
        case Mapping():
            return {str(k): _nested(v) for k, v in value.items()}
        case list() | tuple():
            return [_nested(v) for v in value]
    raise TypeError(f"cannot send a {type(value).__name__} value to Stripe")


def _unix(value: int | str) -> str:
    if isinstance(value, int):
        return str(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:  # 'infinity', a BC date, a year past 9999
        raise BadTimestamp(f"{value!r} is not an instant Stripe can hold") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp()))


def encode_fields(row: Mapping[str, object], *, clearing: bool) -> dict[str, object]:
    encoded: dict[str, object] = {}
    for name, value in row.items():
        if value is None and not clearing:
            continue
        try:
            encoded[name] = param_value(name, value)
        except BadTimestamp as exc:
            raise ApiError(ErrorKind.INVALID_VALUE, str(exc), column=name) from None
        except (TypeError, ValueError) as exc:
            raise ApiError(ErrorKind.UNSUPPORTED, str(exc), column=name) from None
    return encoded


def form(params: Mapping[str, object], prefix: str = "") -> list[tuple[str, str]]:
    """Nested parameters as form pairs with bracket keys."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            if not value:
                pairs.append((name, ""))  # an empty object: unset (e.g. all metadata)
            pairs += form(value, name)
        elif isinstance(value, list):
            if not value:
                pairs.append((name, ""))
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    pairs += form(item, f"{name}[{index}]")
                else:
                    pairs.append((f"{name}[{index}]", str(item)))
        else:
            pairs.append((name, str(value)))
    return pairs


def decode_object(raw: Mapping[str, object]) -> dict[str, object]:
    return {
        name: _iso(value) if name in UNIX_TIME_FIELDS and isinstance(value, int) else value
        for name, value in raw.items()
    }


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()
