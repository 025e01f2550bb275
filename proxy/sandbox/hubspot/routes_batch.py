"""Batch endpoints (`/batch/{create,update,upsert,archive,read}`), ≤100 inputs each.

Status codes as HubSpot documents them: create 201, update/upsert/read 200, archive 204,
and 207 with `errors`/`numErrors` beside the successful `results` when some inputs failed.
Missing objects are reported together in one OBJECT_NOT_FOUND entry listing their ids.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import bad_request, missing_ids
from .model import render
from .state import SandboxState
from .store import BatchResult, WriteInput, check_batch_size
from .validation import iso_ms
from .web import query_flag, read_json, sandbox

Writer = Callable[[str, Sequence[WriteInput], bool], BatchResult]
Endpoint = Callable[[Request], Awaitable[Response]]


async def _inputs(request: Request) -> tuple[dict[str, object], list[dict[str, object]]]:
    body = await read_json(request)
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise bad_request("Invalid input JSON: inputs must be a list of objects")
    check_batch_size(inputs)
    return body, inputs


def _text(raw: dict[str, object], key: str) -> str | None:
    value = raw.get(key)
    return None if value is None else str(value)


def _batch_response(
    results: list[dict[str, object]],
    errors: list[dict[str, object]],
    missing: Sequence[str],
    type_label: str,
    started: datetime,
    ok_status: int,
    verb: str,
) -> Response:
    body: dict[str, object] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": iso_ms(started),
        "completedAt": iso_ms(datetime.now(UTC)),
    }
    if missing:
        errors = [*errors, missing_ids(type_label, verb, missing).batch_entry(None)]
    if not errors:
        return JSONResponse(body, status_code=ok_status)
    return JSONResponse(body | {"numErrors": len(errors), "errors": errors}, status_code=207)


def _writer(pick: Callable[[SandboxState], Writer], ok_status: int, verb: str) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        state, type_name = sandbox(request), request.path_params["type"]
        started = datetime.now(UTC)
        _, raw_inputs = await _inputs(request)
        inputs = [
            WriteInput(
                raw.get("properties"),
                id=_text(raw, "id"),
                id_property=_text(raw, "idProperty"),
                trace_id=_text(raw, "objectWriteTraceId"),
            )
            for raw in raw_inputs
        ]
        multi = state.multi_status([i.trace_id for i in inputs])
        result = pick(state)(type_name, inputs, multi)
        schema = state.store.schema(type_name)
        results = [
            render(w.obj, schema, everything=True, new=w.new, trace_id=w.trace_id)
            for w in result.written
        ]
        if state.switches.shuffle_results:
            random.shuffle(results)
        missing = [e.context["id"][0] for e, _ in result.errors if e.category == "OBJECT_NOT_FOUND"]
        errors = [e.batch_entry(t) for e, t in result.errors if e.category != "OBJECT_NOT_FOUND"]
        return _batch_response(
            results, errors, missing, schema.info.singular, started, ok_status, verb
        )

    return endpoint


async def batch_archive(request: Request) -> Response:
    _, raw_inputs = await _inputs(request)
    ids = [str(raw.get("id", "")) for raw in raw_inputs]
    sandbox(request).store.archive(request.path_params["type"], ids)
    return Response(status_code=204)


async def batch_read(request: Request) -> Response:
    state, type_name = sandbox(request), request.path_params["type"]
    started = datetime.now(UTC)
    body, raw_inputs = await _inputs(request)
    found, missing = state.store.read_many(
        type_name,
        [str(raw.get("id", "")) for raw in raw_inputs],
        _text(body, "idProperty"),
        archived=query_flag(request, "archived"),
    )
    requested = body.get("properties")
    wanted = [str(p) for p in requested] if isinstance(requested, list) else None
    schema = state.store.schema(type_name)
    results = [render(o, schema, wanted) for o in found]
    return _batch_response(results, [], missing, schema.info.singular, started, 200, "read")


def _batch_route(op: str, endpoint: Endpoint) -> Route:
    return Route(f"/crm/v3/objects/{{type}}/batch/{op}", endpoint, methods=["POST"])


routes = [
    _batch_route("create", _writer(lambda s: s.store.create, 201, "create")),
    _batch_route("update", _writer(lambda s: s.store.update, 200, "update")),
    _batch_route("upsert", _writer(lambda s: s.store.upsert, 200, "upsert")),
    _batch_route("archive", batch_archive),
    _batch_route("read", batch_read),
]
