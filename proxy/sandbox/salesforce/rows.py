"""What the record routes share: finding a row the way Salesforce resolves path ids and
external ids, choosing fields, and opening a write batch for the request."""

from __future__ import annotations

from starlette.requests import Request

from .errors import (
    SalesforceError,
    bad_external_id_field,
    entity_deleted,
    no_such_column_in_query,
    not_found,
)
from .ids import to18
from .rules import same_value
from .schema import FieldDef, SObjectSchema
from .state import SalesforceState
from .store import Record
from .values import bind
from .web import csv_param, sandbox, version
from .writes import Outcome, WriteBatch


def allow_duplicates(request: Request) -> bool:
    """`Sforce-Duplicate-Rule-Header: allowSave=true` saves despite duplicate rules."""
    header = request.headers.get("sforce-duplicate-rule-header", "")
    options = dict(part.strip().partition("=")[::2] for part in header.split(";") if part.strip())
    return options.get("allowSave", "").lower() == "true"


def batch_for(request: Request, *, all_or_none: bool) -> WriteBatch:
    state = sandbox(request)
    return WriteBatch(
        state.store,
        state.rules(version(request)),
        all_or_none=all_or_none,
        allow_duplicates=allow_duplicates(request),
    )


def requested_fields(
    request: Request, schema: SObjectSchema, names: list[str] | None = None
) -> list[FieldDef] | None:
    """The `fields` parameter (or given names) as field definitions; None means all."""
    if names is None:
        names = csv_param(request, "fields")
    if names is None:
        return None
    chosen = []
    for name in names:
        item = schema.field(name)
        if item is None:
            raise no_such_column_in_query(name, schema.name)
        chosen.append(item)
    return chosen


def failed(outcome: Outcome) -> SalesforceError:
    return SalesforceError(400, outcome.errors)


def lookup(state: SalesforceState, schema: SObjectSchema, raw_id: str) -> Record:
    record_id = to18(raw_id)
    if record_id is None:
        # Not an id, so Salesforce reads the segment as an external id field name.
        raise bad_external_id_field(raw_id)
    record = state.store.get(record_id)
    if record is None or record.type != schema.name:
        raise not_found()
    if record.deleted:
        raise SalesforceError(404, [entity_deleted()])
    return record


def external_field(schema: SObjectSchema, name: str) -> FieldDef:
    item = schema.field(name)
    if item is None or not (item.external_id or item.name == "Id"):
        raise bad_external_id_field(name)
    return item


def matches(state: SalesforceState, schema: SObjectSchema, key: FieldDef, raw: str) -> list[Record]:
    value = bind(key, raw)
    if key.name == "Id":
        found = state.store.get(str(to18(raw)))
        return (
            [found] if found is not None and found.type == schema.name and not found.deleted else []
        )
    return [
        r
        for r in state.store.records(schema.name)
        if same_value(key, r.values.get(key.name), value)
    ]


def multiple_choices(records: list[Record], version: str) -> SalesforceError:
    """Upsert or read by an external id that more than one record holds: HTTP 300 with
    the matching records' URLs."""
    urls = [f"/services/data/v{version}/sobjects/{r.type}/{r.id}" for r in records]
    return SalesforceError(300, body=urls)
