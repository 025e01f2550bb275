"""Runs a parsed SOQL query against the store: type and field resolution (INVALID_TYPE,
INVALID_FIELD), filter literal type checks, filtering, ordering, LIMIT/OFFSET and the
`{"totalSize", "done", "records"}` answer. All rows come back at once (`done` is always
true; the sandbox never pages with nextRecordsUrl). Text comparisons ignore case, as
Salesforce's do."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from .errors import SalesforceError, fail, no_such_column_in_query, unsupported_type
from .ids import to18
from .schema import NUMBER_TYPES, TEXT_TYPES, FieldDef, SObjectSchema
from .soql import Compare, Condition, InList, Junction, Literal, Not, Query, parse
from .store import Record, Store, render
from .values import parse_datetime

_ACCEPTS = {"boolean": "boolean", "date": "date", "datetime": "datetime"}
_SOQL_TYPE_NAMES = {"datetime": "dateTime", "int": "integer"}


def _field(schema: SObjectSchema, name: str) -> FieldDef:
    found = schema.field(name)
    if found is None:
        raise no_such_column_in_query(name, schema.name)
    return found


def _literal_error(item: FieldDef, literal: Literal) -> SalesforceError:
    type_name = _SOQL_TYPE_NAMES.get(item.type, item.type)
    quoting = "be enclosed" if item.type in TEXT_TYPES else "not be enclosed"
    return fail(
        400,
        "INVALID_FIELD",
        f"value of filter criterion for field '{item.name}' must be of type {type_name} "
        f"and should {quoting} in quotes",
    )


def _comparable(item: FieldDef, literal: Literal) -> object:
    """The literal in the stored value's form, after checking it suits the field."""
    if literal.kind == "null":
        return None
    if item.type in TEXT_TYPES:
        expected = "string"
    elif item.type in NUMBER_TYPES:
        expected = "number"
    else:
        expected = _ACCEPTS[item.type]
    if literal.kind != expected:
        raise _literal_error(item, literal)
    if literal.kind == "datetime":
        return parse_datetime(str(literal.value))
    if literal.kind == "string" and item.type in ("id", "reference"):
        return to18(str(literal.value)) or literal.value
    return literal.value


def _key(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


def _like(pattern: str) -> re.Pattern[str]:
    parts = ("." * (c == "_") or ".*" * (c == "%") or re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compare(op: str, left: object, right: object) -> bool:
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if left is None or right is None:
        return False
    try:
        return _ORDERING[op](left, right)
    except TypeError:
        return False


Predicate = Callable[[Record], bool]


def _compile(schema: SObjectSchema, condition: Condition) -> Predicate:
    """Resolves names and literals once, up front, so errors surface before any row."""
    if isinstance(condition, Junction):
        parts = [_compile(schema, p) for p in condition.parts]
        if condition.op == "AND":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)
    if isinstance(condition, Not):
        inner = _compile(schema, condition.inner)
        return lambda r: not inner(r)
    item = _field(schema, condition.field)
    if isinstance(condition, InList):
        wanted = {_key(_comparable(item, v)) for v in condition.values}
        negated = condition.negated
        return lambda r: (_key(r.get(item)) in wanted) != negated
    return _compile_compare(item, condition)


def _compile_compare(item: FieldDef, condition: Compare) -> Predicate:
    if condition.op == "LIKE":
        if item.type not in TEXT_TYPES:
            raise _literal_error(item, condition.value)
        pattern = _like(str(condition.value.value))
        return lambda r: isinstance(v := r.get(item), str) and pattern.fullmatch(v) is not None
    right = _key(_comparable(item, condition.value))
    op = condition.op
    return lambda r: _compare(op, _key(r.get(item)), right)


def _sort_key(item: FieldDef) -> Callable[[Record], Any]:
    return lambda record: _key(record.get(item))


def _sort(records: list[Record], schema: SObjectSchema, query: Query) -> list[Record]:
    for key in reversed(query.order):
        item = _field(schema, key.field)
        present = [r for r in records if r.get(item) is not None]
        absent = [r for r in records if r.get(item) is None]
        present.sort(key=_sort_key(item), reverse=key.descending)
        records = present + absent if key.nulls_last else absent + present
    return records


def run(store: Store, text: str, version: str, *, include_deleted: bool) -> dict[str, object]:
    query = parse(text)
    schema = store.catalog.get(query.type_name)
    if schema is None:
        raise unsupported_type(query.type_name)
    selected: list[FieldDef] = []
    for name in query.fields:
        item = _field(schema, name)
        if item not in selected:
            selected.append(item)
    keep = _compile(schema, query.where) if query.where is not None else None
    for key in query.order:
        _field(schema, key.field)
    with store.lock:
        rows = store.records(schema.name, deleted=None if include_deleted else False)
    rows = [r for r in rows if keep is None or keep(r)]
    rows = _sort(rows, schema, query)[query.offset :]
    if query.limit is not None:
        rows = rows[: query.limit]
    if query.count:
        return {"totalSize": len(rows), "done": True, "records": []}
    return {
        "totalSize": len(rows),
        "done": True,
        "records": [render(r, schema, version, selected, with_id=False) for r in rows],
    }
