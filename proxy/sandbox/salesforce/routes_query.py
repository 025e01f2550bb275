"""`GET /query?q=` and `GET /queryAll?q=` (queryAll also sees the recycle bin)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import malformed_query
from .query import run
from .web import json_response, sandbox, version

BASE = "/services/data/{version}"


def _endpoint(include_deleted: bool) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        text = request.query_params.get("q", "").strip()
        if not text:
            raise malformed_query("unexpected token: <EOF>")
        state = sandbox(request)
        return json_response(
            run(state.store, text, version(request), include_deleted=include_deleted)
        )

    return endpoint


routes = [
    Route(f"{BASE}/{path}", _endpoint(path.startswith("queryAll")), methods=["GET"])
    for path in ("query", "query/", "queryAll", "queryAll/")
]
