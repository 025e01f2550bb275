"""Parameter schemas and their checking, the way Stripe checks form parameters: unknown
names first (`parameter_unknown`), then missing required ones, then each value's type.

An empty string unsets: a nullable field becomes None, `metadata=` clears all metadata,
`metadata[k]=` removes one key; for any other field it is `parameter_invalid_empty`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from . import errors
from .currencies import CURRENCIES
from .formdata import Value

Kind = Literal[
    "string",
    "integer",
    "decimal",
    "boolean",
    "enum",
    "email",
    "currency",
    "metadata",
    "object",
    "map",
    "list",
    "range",
]

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500
_INTEGER = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_RANGE_KEYS = ("gt", "gte", "lt", "lte")


@dataclass(frozen=True)
class Field:
    kind: Kind
    required: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()
    fields: Mapping[str, Field] = field(default_factory=dict)
    item: Field | None = None
    minimum: int | Decimal | None = None
    maximum: int | Decimal | None = None
    max_length: int = 5000
    max_items: int | None = None


@dataclass(frozen=True)
class MetadataChange:
    """`metadata[...]` of one request: keys to set (None: remove), maybe after clearing all."""

    clear: bool = False
    changes: Mapping[str, str | None] = field(default_factory=dict)

    def apply(self, current: Mapping[str, str]) -> dict[str, str]:
        result = {} if self.clear else dict(current)
        for key, value in self.changes.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = value
        if len(result) > METADATA_MAX_KEYS:
            raise errors.invalid(
                f"Invalid metadata: an object can have at most {METADATA_MAX_KEYS} metadata "
                f"keys (this request would leave {len(result)}).",
                "metadata",
            )
        return result


@dataclass(frozen=True)
class Range:
    """A `created[gte]=...` style filter (or `created=<t>`, an exact match)."""

    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None

    def holds(self, value: int) -> bool:
        return (
            (self.gt is None or value > self.gt)
            and (self.gte is None or value >= self.gte)
            and (self.lt is None or value < self.lt)
            and (self.lte is None or value <= self.lte)
        )


def string(**kw: object) -> Field:
    return Field("string", **kw)  # type: ignore[arg-type]


EXPAND = Field("list", item=Field("string"))


def check(
    raw: Mapping[str, Value], spec: Mapping[str, Field], prefix: str = ""
) -> dict[str, object]:
    """The checked parameters: absent ones left out, unset ones None."""
    for key in raw:
        if key not in spec:
            raise errors.parameter_unknown(_name(prefix, key))
    out: dict[str, object] = {}
    for key, fld in spec.items():
        name = _name(prefix, key)
        if key not in raw:
            if fld.required:
                raise errors.parameter_missing(name)
            continue
        out[key] = coerce(raw[key], fld, name)
    return out


def coerce(value: Value, fld: Field, name: str) -> object:
    if value == "":
        if fld.kind == "metadata":
            return MetadataChange(clear=True)
        if fld.nullable and not fld.required:
            return None
        raise errors.parameter_invalid_empty(name)
    if fld.kind == "object":
        if not isinstance(value, dict):
            raise errors.invalid(f"Invalid object: {name} must be a hash", name)
        return check(value, fld.fields, name)
    if fld.kind == "map":
        if not isinstance(value, dict) or fld.item is None:
            raise errors.invalid(f"Invalid object: {name} must be a hash", name)
        return {k: coerce(v, fld.item, _name(name, k)) for k, v in value.items()}
    if fld.kind == "list":
        return _list(value, fld, name)
    if fld.kind == "metadata":
        return _metadata(value)
    if fld.kind == "range":
        return _range(value, name)
    if not isinstance(value, str):
        raise errors.invalid(
            f"Invalid {_scalar_label(fld)}: {name} must be a {_scalar_label(fld)}", name
        )
    return _scalar(value, fld, name)


def _scalar(value: str, fld: Field, name: str) -> object:
    if fld.kind == "integer":
        if not _INTEGER.match(value):
            raise errors.invalid(f"Invalid integer: {value}", name)
        return _bounded(int(value), fld, name)
    if fld.kind == "decimal":
        try:
            number = Decimal(value) if _DECIMAL.match(value) else None
        except InvalidOperation:
            number = None
        if number is None:
            raise errors.invalid(f"Invalid decimal: {value}", name)
        return _bounded(number, fld, name)
    if fld.kind == "boolean":
        if value not in ("true", "false"):
            raise errors.invalid(f"Invalid boolean: {value}", name)
        return value == "true"
    if fld.kind == "enum":
        if value not in fld.choices:
            raise errors.invalid(f"Invalid {name}: must be one of {_one_of(fld.choices)}", name)
        return value
    if fld.kind == "currency":
        code = value.lower()
        if code not in CURRENCIES:
            raise errors.invalid(
                f"Invalid currency: {value}. Stripe currently supports these currencies: "
                f"{', '.join(CURRENCIES)}",
                name,
            )
        return code
    if len(value) > fld.max_length:
        raise errors.invalid(
            f"Invalid string: {value[:20]}...; must be at most {fld.max_length} characters", name
        )
    if fld.kind == "email" and not _EMAIL.match(value):
        raise errors.invalid(f"Invalid email address: {value}", name, "email_invalid")
    return value


def _bounded(number: int | Decimal, fld: Field, name: str) -> int | Decimal:
    if fld.minimum is not None and number < fld.minimum:
        raise errors.invalid(f"This value must be greater than or equal to {fld.minimum}.", name)
    if fld.maximum is not None and number > fld.maximum:
        raise errors.invalid(f"This value must be less than or equal to {fld.maximum}.", name)
    return number


def _list(value: Value, fld: Field, name: str) -> list[object]:
    if isinstance(value, dict) and all(k.isdigit() for k in value):
        items: list[Value] = [value[k] for k in sorted(value, key=int)]
    elif isinstance(value, list):
        items = value
    else:
        raise errors.invalid("Invalid array", name)
    if fld.max_items is not None and len(items) > fld.max_items:
        raise errors.invalid(f"Invalid array: {name} can have at most {fld.max_items} items", name)
    item = fld.item or Field("string")
    return [coerce(v, item, f"{name}[{i}]") for i, v in enumerate(items)]


def _metadata(value: Value) -> MetadataChange:
    if not isinstance(value, dict):
        raise errors.invalid(
            "Invalid metadata: metadata must be a hash of key-value pairs", "metadata"
        )
    changes: dict[str, str | None] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise errors.invalid(
                f"Invalid metadata: the value of '{key}' must be a string", "metadata"
            )
        if not key or len(key) > METADATA_KEY_MAX:
            raise errors.invalid(
                f"Invalid metadata: keys must be 1 to {METADATA_KEY_MAX} characters long "
                f"('{key}' has {len(key)})",
                "metadata",
            )
        if len(item) > METADATA_VALUE_MAX:
            raise errors.invalid(
                f"Invalid metadata: values must be at most {METADATA_VALUE_MAX} characters "
                f"long (the value of '{key}' has {len(item)})",
                "metadata",
            )
        changes[key] = item or None
    return MetadataChange(changes=changes)


def _range(value: Value, name: str) -> Range:
    if isinstance(value, str):
        exact = _scalar(value, Field("integer"), name)
        return Range(gte=int(exact), lte=int(exact))  # type: ignore[call-overload]
    if not isinstance(value, dict):
        raise errors.invalid(f"Invalid object: {name} must be an integer or a hash", name)
    bounds = check(value, {k: Field("integer") for k in _RANGE_KEYS}, name)
    return Range(**{k: int(v) for k, v in bounds.items()})  # type: ignore[call-overload]


def _one_of(choices: tuple[str, ...]) -> str:
    if len(choices) <= 2:
        return " or ".join(choices)
    return f"{', '.join(choices[:-1])}, or {choices[-1]}"


def _scalar_label(fld: Field) -> str:
    return {"integer": "integer", "decimal": "decimal", "boolean": "boolean"}.get(
        fld.kind, "string"
    )


def _name(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key
