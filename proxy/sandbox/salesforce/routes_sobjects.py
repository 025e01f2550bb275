"""sObject resources: global describe, describe, and single-record rows (create, read,
update, delete) plus rows by external id (upsert, read, delete)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .describe import describe, object_summary
from .errors import not_found
from .rows import (
    batch_for,
    external_field,
    failed,
    lookup,
    matches,
    multiple_choices,
    requested_fields,
)
from .store import render
from .values import bind, bind_record
from .web import json_response, read_object, sandbox, schema_for, version

BASE = "/services/data/{version}/sobjects"
MAX_BATCH = 200


async def global_describe(request: Request) -> Response:
    state, v = sandbox(request), version(request)
    return json_response(
        {
            "encoding": "UTF-8",
            "maxBatchSize": MAX_BATCH,
            "sobjects": [object_summary(s, v) for s in state.store.catalog.all()],
        }
    )


async def describe_type(request: Request) -> Response:
    return json_response(describe(schema_for(request), version(request)))


async def basic_info(request: Request) -> Response:
    schema = schema_for(request)
    return json_response(
        {"objectDescribe": object_summary(schema, version(request)), "recentItems": []}
    )


async def create_record(request: Request) -> Response:
    schema = schema_for(request)
    changes = bind_record(schema, await read_object(request))
    with sandbox(request).store.lock:
        batch = batch_for(request, all_or_none=True)
        outcome = batch.create(schema, changes)
        batch.finish()
    if not outcome.success:
        raise failed(outcome)
    return json_response(outcome.result(), 201)


async def get_record(request: Request) -> Response:
    state, schema = sandbox(request), schema_for(request)
    fields = requested_fields(request, schema)
    with state.store.lock:
        record = lookup(state, schema, request.path_params["id"])
    return json_response(render(record, schema, version(request), fields))


async def update_record(request: Request) -> Response:
    state, schema = sandbox(request), schema_for(request)
    changes = bind_record(schema, await read_object(request))
    with state.store.lock:
        record = lookup(state, schema, request.path_params["id"])
        batch = batch_for(request, all_or_none=True)
        outcome = batch.update(schema, record.id, changes)
        batch.finish()
    if not outcome.success:
        raise failed(outcome)
    return Response(status_code=204)


async def delete_record(request: Request) -> Response:
    state, schema = sandbox(request), schema_for(request)
    with state.store.lock:
        record = lookup(state, schema, request.path_params["id"])
        batch = batch_for(request, all_or_none=True)
        batch.delete(record.id)
        batch.finish()
    return Response(status_code=204)


async def upsert_record(request: Request) -> Response:
    state, schema = sandbox(request), schema_for(request)
    key = external_field(schema, request.path_params["field"])
    value = bind(key, request.path_params["value"])
    changes = bind_record(schema, await read_object(request))
    with state.store.lock:
        batch = batch_for(request, all_or_none=True)
        outcome = batch.upsert(schema, key, value, changes)
        batch.finish()
        if outcome.matches:
            raise multiple_choices(
                [r for i in outcome.matches if (r := state.store.get(i))], version(request)
            )
    if not outcome.success:
        raise failed(outcome)
    return json_response(outcome.result(upsert=True), 201 if outcome.created else 200)


async def get_by_external_id(request: Request) -> Response:
    state, schema = sandbox(request), schema_for(request)
    key = external_field(schema, request.path_params["field"])
    fields = requested_fields(request, schema)
    with state.store.lock:
        found = matches(state, schema, key, request.path_params["value"])
    if not found:
        raise not_found()
    if len(found) > 1:
        raise multiple_choices(found, version(request))
    return json_response(render(found[0], schema, version(request), fields))


async def delete_by_external_id(request: Request) -> Response:
    state, schema = sandbox(request), schema_for(request)
    key = external_field(schema, request.path_params["field"])
    with state.store.lock:
        found = matches(state, schema, key, request.path_params["value"])
        if not found:
            raise not_found()
        if len(found) > 1:
            raise multiple_choices(found, version(request))
        batch = batch_for(request, all_or_none=True)
        batch.delete(found[0].id)
        batch.finish()
    return Response(status_code=204)


routes = [
    Route(BASE, global_describe, methods=["GET"]),
    Route(BASE + "/", global_describe, methods=["GET"]),
    Route(BASE + "/{type}/describe", describe_type, methods=["GET"]),
    Route(BASE + "/{type}/describe/", describe_type, methods=["GET"]),
    Route(BASE + "/{type}", basic_info, methods=["GET"]),
    Route(BASE + "/{type}", create_record, methods=["POST"]),
    Route(BASE + "/{type}/", create_record, methods=["POST"]),
    Route(BASE + "/{type}/{id}", get_record, methods=["GET"]),
    Route(BASE + "/{type}/{id}", update_record, methods=["PATCH"]),
    Route(BASE + "/{type}/{id}", delete_record, methods=["DELETE"]),
    Route(BASE + "/{type}/{field}/{value}", get_by_external_id, methods=["GET"]),
    Route(BASE + "/{type}/{field}/{value}", upsert_record, methods=["PATCH"]),
    Route(BASE + "/{type}/{field}/{value}", delete_by_external_id, methods=["DELETE"]),
]
