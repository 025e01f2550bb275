"""sObject Collections (`/composite/sobjects`): create, update, upsert and delete up to
200 records, and retrieve up to 2000, in one atomic call. Results come back in input
order. Errors in the request itself (its JSON, an unknown type or field, a value that
cannot bind, too many records) fail the whole call with 400; save-time errors go into
that record's result."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import fail, json_parser, too_many_records, unsupported_type
from .ids import to18
from .rows import batch_for, external_field, requested_fields
from .schema import SObjectSchema
from .store import render
from .values import bind_record
from .web import (
    csv_param,
    flag,
    json_response,
    read_json,
    read_object,
    sandbox,
    schema_for,
    version,
)
from .writes import Outcome

BASE = "/services/data/{version}/composite/sobjects"
WRITE_LIMIT = 200
RETRIEVE_LIMIT = 2000

Parsed = tuple[SObjectSchema, dict[str, object]]


async def _records(request: Request) -> tuple[bool, list[dict[str, object]]]:
    body = await read_object(request)
    all_or_none = body.get("allOrNone", False)
    if not isinstance(all_or_none, bool):
        raise json_parser("Cannot deserialize instance of boolean from allOrNone")
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise json_parser("records must be a list of sObjects")
    if len(records) > WRITE_LIMIT:
        raise too_many_records(WRITE_LIMIT)
    return all_or_none, records


def _typed(request: Request, raw: dict[str, object]) -> Parsed:
    attributes = raw.get("attributes")
    type_name = attributes.get("type") if isinstance(attributes, dict) else None
    if not isinstance(type_name, str) or not type_name:
        raise fail(400, "INVALID_TYPE", "Must send a concrete entity type.")
    schema = sandbox(request).store.catalog.get(type_name)
    if schema is None:
        raise unsupported_type(type_name)
    return schema, bind_record(schema, raw)


def _answer(outcomes: list[Outcome], *, upsert: bool = False) -> Response:
    return json_response([o.result(upsert=upsert) for o in outcomes])


async def create_records(request: Request) -> Response:
    all_or_none, records = await _records(request)
    parsed = [_typed(request, raw) for raw in records]
    with sandbox(request).store.lock:
        batch = batch_for(request, all_or_none=all_or_none)
        for schema, changes in parsed:
            batch.create(schema, changes)
        return _answer(batch.finish())


async def update_records(request: Request) -> Response:
    all_or_none, records = await _records(request)
    parsed = [_typed(request, raw) for raw in records]
    with sandbox(request).store.lock:
        batch = batch_for(request, all_or_none=all_or_none)
        for schema, changes in parsed:
            batch.update(schema, changes.get("Id"), changes)
        return _answer(batch.finish())


async def upsert_records(request: Request) -> Response:
    schema = schema_for(request)
    key = external_field(schema, request.path_params["field"])
    all_or_none, records = await _records(request)
    parsed = [bind_record(schema, raw) for raw in records]
    with sandbox(request).store.lock:
        batch = batch_for(request, all_or_none=all_or_none)
        for changes in parsed:
            batch.upsert(schema, key, changes.get(key.name), changes)
        return _answer(batch.finish(), upsert=True)


async def delete_records(request: Request) -> Response:
    ids = csv_param(request, "ids")
    if not ids:
        raise fail(400, "MISSING_ARGUMENT", "ids parameter is required")
    if len(ids) > WRITE_LIMIT:
        raise too_many_records(WRITE_LIMIT)
    with sandbox(request).store.lock:
        batch = batch_for(request, all_or_none=flag(request, "allOrNone"))
        for raw_id in ids:
            batch.delete(raw_id)
        return _answer(batch.finish())


async def _retrieve(request: Request, ids: list[str], names: list[str]) -> Response:
    schema = schema_for(request)
    if not names:
        raise fail(400, "MISSING_ARGUMENT", "fields parameter is required")
    if len(ids) > RETRIEVE_LIMIT:
        raise too_many_records(RETRIEVE_LIMIT)
    fields = requested_fields(request, schema, names)
    store, v = sandbox(request).store, version(request)
    results: list[object] = []
    with store.lock:
        for raw_id in ids:
            record = store.get(to18(raw_id) or "")
            usable = record is not None and record.type == schema.name and not record.deleted
            results.append(render(record, schema, v, fields) if record and usable else None)
    return json_response(results)


async def retrieve_get(request: Request) -> Response:
    return await _retrieve(
        request, csv_param(request, "ids") or [], csv_param(request, "fields") or []
    )


async def retrieve_post(request: Request) -> Response:
    body = await read_json(request)
    ids = body.get("ids") if isinstance(body, dict) else None
    names = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not isinstance(names, list):
        raise json_parser("Expected an object with 'ids' and 'fields' lists")
    return await _retrieve(request, [str(i) for i in ids], [str(n) for n in names])


routes = [
    Route(BASE, create_records, methods=["POST"]),
    Route(BASE, update_records, methods=["PATCH"]),
    Route(BASE, delete_records, methods=["DELETE"]),
    Route(BASE + "/{type}", retrieve_get, methods=["GET"]),
    Route(BASE + "/{type}", retrieve_post, methods=["POST"]),
    Route(BASE + "/{type}/{field}", upsert_records, methods=["PATCH"]),
]
