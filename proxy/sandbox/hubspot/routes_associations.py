"""Associations v4: create the default association, remove all, list by target type."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import bad_request
from .validation import iso_ms
from .web import sandbox

_BASE = "/crm/v4/objects/{from_type}/{from_id}/associations"
MAX_PAGE = 500


async def associate_default(request: Request) -> Response:
    started = datetime.now(UTC)
    p = request.path_params
    edges = sandbox(request).store.associate(p["from_type"], p["from_id"], p["to_type"], p["to_id"])
    results = [
        {
            "from": {"id": e.from_id},
            "to": {"id": e.to_id},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": e.type_id,
            },
        }
        for e in edges
    ]
    return JSONResponse(
        {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso_ms(started),
            "completedAt": iso_ms(datetime.now(UTC)),
        }
    )


async def remove_associations(request: Request) -> Response:
    p = request.path_params
    sandbox(request).store.disassociate(p["from_type"], p["from_id"], p["to_type"], p["to_id"])
    return Response(status_code=204)


async def list_associations(request: Request) -> Response:
    p = request.path_params
    grouped = sandbox(request).store.associations_of(p["from_type"], p["from_id"], p["to_type"])
    try:
        limit = int(request.query_params.get("limit", str(MAX_PAGE)))
        offset = int(request.query_params.get("after", "0"))
    except ValueError:
        raise bad_request("limit and after must be integers") from None
    items = list(grouped.items())
    page = items[offset : offset + min(limit, MAX_PAGE)]
    body: dict[str, object] = {
        "results": [
            {
                "toObjectId": int(to_id),
                "associationTypes": [
                    {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in type_ids
                ],
            }
            for to_id, type_ids in page
        ]
    }
    if offset + len(page) < len(items):
        body["paging"] = {"next": {"after": str(offset + len(page))}}
    return JSONResponse(body)


routes = [
    Route(_BASE + "/default/{to_type}/{to_id}", associate_default, methods=["PUT"]),
    Route(_BASE + "/{to_type}/{to_id}", remove_associations, methods=["DELETE"]),
    Route(_BASE + "/{to_type}", list_associations, methods=["GET"]),
]
