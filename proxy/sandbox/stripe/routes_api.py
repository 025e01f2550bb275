"""Stripe's `/v1/...` endpoints, one generic set of handlers per resource type:
create, retrieve, update, delete, list and search."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import errors
from .coupons import Coupons
from .customers import Customers
from .params import EXPAND, Field, Range, check, string
from .prices import Prices
from .products import Products
from .resource import Resource, reject_unexpandable
from .search import parse
from .store import Obj, Store, deleted_stub, render
from .web import read_params, sandbox

RESOURCES: tuple[Resource, ...] = (Customers(), Products(Prices()), Prices(), Coupons())
BY_NAME: Mapping[str, Resource] = {r.name: r for r in RESOURCES}

_LIMIT = Field("integer", minimum=1, maximum=100)
_LIST_SPEC: Mapping[str, Field] = {
    "created": Field("range"),
    "ending_before": string(),
    "expand": EXPAND,
    "limit": _LIMIT,
    "starting_after": string(),
}
_SEARCH_SPEC: Mapping[str, Field] = {
    "expand": EXPAND,
    "limit": _LIMIT,
    "page": string(),
    "query": string(required=True),
}
_RETRIEVE_SPEC: Mapping[str, Field] = {"expand": EXPAND}


def _expanded(resource: Resource, obj: Obj, paths: list[str], store: Store) -> Obj:
    shown = render(obj)
    for path in paths:
        resource.expand(shown, path, store)
    return shown


def _expansions(resource: Resource, params: Mapping[str, object], prefix: str = "") -> list[str]:
    paths = params.get("expand") or []
    assert isinstance(paths, list)
    return reject_unexpandable(resource, [str(p) for p in paths], prefix)


async def create(request: Request, resource: Resource) -> Response:
    params = check(await read_params(request), resource.create_spec)
    paths = _expansions(resource, params)
    store = sandbox(request).store
    with store.lock:
        obj = resource.create(params, store)
    return JSONResponse(_expanded(resource, obj, paths, store))


async def retrieve(request: Request, resource: Resource) -> Response:
    params = check(await read_params(request), _RETRIEVE_SPEC)
    paths = _expansions(resource, params)
    store = sandbox(request).store
    shown = resource.retrieve(store, request.path_params["id"])
    if not shown.get("deleted"):
        for path in paths:
            resource.expand(shown, path, store)
    return JSONResponse(shown)


async def update(request: Request, resource: Resource) -> Response:
    params = check(await read_params(request), resource.update_spec)
    paths = _expansions(resource, params)
    store = sandbox(request).store
    with store.lock:
        obj = resource.update(resource.live(store, request.path_params["id"]), params, store)
        resource.save(obj, params, store)
    return JSONResponse(_expanded(resource, obj, paths, store))


async def delete(request: Request, resource: Resource) -> Response:
    check(await read_params(request), {})
    store = sandbox(request).store
    with store.lock:
        obj = resource.live(store, request.path_params["id"])
        resource.check_delete(obj, store)
        store.delete(resource.name, str(obj["id"]))
    return JSONResponse(deleted_stub(obj))


async def list_objects(request: Request, resource: Resource) -> Response:
    params = check(await read_params(request), {**_LIST_SPEC, **resource.list_spec})
    paths = _expansions(resource, params, "data.")
    if "starting_after" in params and "ending_before" in params:
        raise errors.only_one_of("starting_after", "ending_before")
    store = sandbox(request).store
    created = params.get("created")
    chosen = [
        o
        for o in store.objects(resource.name)
        if (not isinstance(created, Range) or created.holds(int(str(o["created"]))))
        and resource.matches(o, params)
    ]
    limit = int(str(params.get("limit", 10)))
    page, has_more = _page(resource, chosen, limit, params)
    return JSONResponse(
        {
            "object": "list",
            "data": [_expanded(resource, o, paths, store) for o in page],
            "has_more": has_more,
            "url": f"/v1/{resource.name}",
        }
    )


def _page(
    resource: Resource, objects: list[Obj], limit: int, params: Mapping[str, object]
) -> tuple[list[Obj], bool]:
    """Cursor pagination over newest-first objects, as Stripe's list endpoints do it."""
    ids = [o["id"] for o in objects]
    for cursor in ("starting_after", "ending_before"):
        if cursor in params:
            anchor = str(params[cursor])
            if anchor not in ids:
                raise errors.resource_missing(resource.label, anchor, cursor, 400)
            at = ids.index(anchor)
            if cursor == "starting_after":
                rest = objects[at + 1 :]
                return rest[:limit], len(rest) > limit
            return objects[max(0, at - limit) : at], at > limit
    return objects[:limit], len(objects) > limit


async def search(request: Request, resource: Resource) -> Response:
    params = check(await read_params(request), _SEARCH_SPEC)
    expand = params.get("expand") or []
    assert isinstance(expand, list)
    raw_paths = [str(p) for p in expand]
    total = "total_count" in raw_paths
    paths = reject_unexpandable(resource, [p for p in raw_paths if p != "total_count"], "data.")
    query = parse(str(params["query"]), resource.search_fields, resource.name)
    store = sandbox(request).store
    hits = [o for o in store.objects(resource.name) if query.matches(o, resource.search_fields)]
    limit = int(str(params.get("limit", 10)))
    offset = _page_offset(params.get("page"))
    page = hits[offset : offset + limit]
    has_more = len(hits) > offset + limit
    body: dict[str, object] = {
        "object": "search_result",
        "data": [_expanded(resource, o, paths, store) for o in page],
        "has_more": has_more,
        "next_page": _page_token(offset + limit) if has_more else None,
        "url": f"/v1/{resource.name}/search",
    }
    if total:
        body["total_count"] = len(hits)
    return JSONResponse(body)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _page_offset(token: object) -> int:
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(str(token).encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    kind, _, number = text.partition(":")
    if kind != "offset" or not number.isdigit():
        raise errors.invalid(f"Invalid page: {token}", "page")
    return int(number)


async def unrecognized(request: Request) -> Response:
    """Any other URL or method, e.g. DELETE /v1/prices/{id}: prices cannot be deleted."""
    request.state.unrouted = True
    raise errors.unrecognized_url(request.method, request.url.path)


Handler = Callable[[Request, Resource], Awaitable[Response]]


def _bind(handler: Handler, resource: Resource) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, resource)

    return endpoint


def _routes(resource: Resource) -> list[Route]:
    base = f"/v1/{resource.name}"
    routes = [
        Route(base, _bind(create, resource), methods=["POST"]),
        Route(base, _bind(list_objects, resource), methods=["GET"]),
    ]
    if resource.search_fields:  # before `/{id}`, which would take "search" for an id
        routes.append(Route(f"{base}/search", _bind(search, resource), methods=["GET"]))
    routes += [
        Route(f"{base}/{{id}}", _bind(retrieve, resource), methods=["GET"]),
        Route(f"{base}/{{id}}", _bind(update, resource), methods=["POST"]),
    ]
    if resource.deletable:
        routes.append(Route(f"{base}/{{id}}", _bind(delete, resource), methods=["DELETE"]))
    return routes


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
routes = [route for resource in RESOURCES for route in _routes(resource)]
fallback = [Route("/{path:path}", unrecognized, methods=ALL_METHODS)]
