"""Properties API: list, read and create property definitions (e.g. a custom `user_id`)."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .errors import HubSpotError, bad_request
from .schema import FIELD_TYPES, PropertyDef
from .web import read_json, sandbox


async def list_properties(request: Request) -> Response:
    schema = sandbox(request).store.schema(request.path_params["type"])
    return JSONResponse({"results": [p.to_json() for p in schema.properties.values()]})


async def get_property(request: Request) -> Response:
    schema = sandbox(request).store.schema(request.path_params["type"])
    prop = schema.properties.get(request.path_params["name"])
    if prop is None:
        raise HubSpotError(
            404,
            f"Unable to find property {request.path_params['name']} for object type "
            f"{schema.info.type_id}",
            "OBJECT_NOT_FOUND",
        )
    return JSONResponse(prop.to_json())


async def create_property(request: Request) -> Response:
    body = await read_json(request)
    try:
        prop = PropertyDef.model_validate(body)
    except ValidationError as exc:
        raise bad_request(f"Invalid property definition: {exc.errors(include_url=False)}") from None
    if prop.field_type not in FIELD_TYPES:
        raise bad_request(f"Invalid fieldType {prop.field_type}", fieldType=[prop.field_type])
    # Clients define data properties; read-only and HubSpot-defined ones come from HubSpot.
    prop = prop.model_copy(update={"read_only": False, "hubspot_defined": False})
    created = sandbox(request).store.add_property(request.path_params["type"], prop)
    return JSONResponse(created.to_json(), status_code=201)


routes = [
    Route("/crm/v3/properties/{type}", list_properties, methods=["GET"]),
    Route("/crm/v3/properties/{type}", create_property, methods=["POST"]),
    Route("/crm/v3/properties/{type}/{name}", get_property, methods=["GET"]),
]
