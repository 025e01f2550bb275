"""Single-object CRM v3 endpoints: create, read, update, archive, list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import bad_request
from .model import render
from .store import WriteInput, single
from .web import query_flag, query_list, read_json, sandbox

MAX_PAGE = 100


async def create_object(request: Request) -> Response:
    state, type_name = sandbox(request), request.path_params["type"]
    body = await read_json(request)
    item = WriteInput(body.get("properties"), trace_id=_str_or_none(body, "objectWriteTraceId"))
    written = single(state.store.create(type_name, [item], multi_status=False))
    schema = state.store.schema(type_name)
    return JSONResponse(render(written.obj, schema, everything=True), status_code=201)


async def get_object(request: Request) -> Response:
    state, type_name = sandbox(request), request.path_params["type"]
    obj = state.store.get(
        type_name,
        request.path_params["id"],
        request.query_params.get("idProperty"),
        archived=query_flag(request, "archived"),
    )
    schema = state.store.schema(type_name)
    return JSONResponse(render(obj, schema, query_list(request, "properties")))


async def update_object(request: Request) -> Response:
    state, type_name = sandbox(request), request.path_params["type"]
    body = await read_json(request)
    item = WriteInput(
        body.get("properties"),
        id=request.path_params["id"],
        id_property=request.query_params.get("idProperty"),
    )
    written = single(state.store.update(type_name, [item], multi_status=False))
    schema = state.store.schema(type_name)
    return JSONResponse(render(written.obj, schema, everything=True))


async def archive_object(request: Request) -> Response:
    sandbox(request).store.archive(request.path_params["type"], [request.path_params["id"]])
    return Response(status_code=204)


async def list_objects(request: Request) -> Response:
    state, type_name = sandbox(request), request.path_params["type"]
    try:
        limit = int(request.query_params.get("limit", "10"))
        after = int(request.query_params.get("after", "0"))
    except ValueError:
        raise bad_request("limit and after must be integers") from None
    if not 1 <= limit <= MAX_PAGE:
        raise bad_request(f"limit must be between 1 and {MAX_PAGE}")
    objects = state.store.objects(type_name, archived=query_flag(request, "archived"))
    remaining = [o for o in objects if int(o.id) >= after]
    page = remaining[:limit]
    schema = state.store.schema(type_name)
    properties = query_list(request, "properties")
    body: dict[str, object] = {"results": [render(o, schema, properties) for o in page]}
    if len(remaining) > limit:
        cursor = remaining[limit].id
        link = request.url.include_query_params(after=cursor)
        body["paging"] = {"next": {"after": cursor, "link": str(link)}}
    return JSONResponse(body)


def _str_or_none(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    return None if value is None else str(value)


routes = [
    Route("/crm/v3/objects/{type}", create_object, methods=["POST"]),
    Route("/crm/v3/objects/{type}", list_objects, methods=["GET"]),
    Route("/crm/v3/objects/{type}/{id}", get_object, methods=["GET"]),
    Route("/crm/v3/objects/{type}/{id}", update_object, methods=["PATCH"]),
    Route("/crm/v3/objects/{type}/{id}", archive_object, methods=["DELETE"]),
]
