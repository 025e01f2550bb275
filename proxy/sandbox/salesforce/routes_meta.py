"""`GET /services/data/` (the API versions, no auth needed) and `GET /services/data/vNN.0`
(the resource directory of one version)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .web import RELEASES, VERSIONS, json_response, version


async def versions(request: Request) -> Response:
    return json_response(
        [{"label": RELEASES[v], "url": f"/services/data/v{v}", "version": v} for v in VERSIONS]
    )


async def resources(request: Request) -> Response:
    base = f"/services/data/v{version(request)}"
    names = ("sobjects", "query", "queryAll", "composite")
    return json_response({name: f"{base}/{name}" for name in names})


routes = [
    Route("/services/data", versions, methods=["GET"]),
    Route("/services/data/", versions, methods=["GET"]),
    Route("/services/data/{version}", resources, methods=["GET"]),
    Route("/services/data/{version}/", resources, methods=["GET"]),
]
