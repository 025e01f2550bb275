"""The part of every sandbox's `/_sandbox/…` control API that is the same for all
vendors: the request log, reset, runtime switches, injected faults. No auth; listings
are `{"results": [...]}`, clears answer 204. Each vendor adds its own object dump (and
extras such as Salesforce's session expiry) and renders errors its own way through
``bad_request``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import FaultBook, FaultSpec
from .requestlog import RequestLog


class ControlledState(Protocol):
    log: RequestLog
    faults: FaultBook

    @property
    def switches(self) -> Any: ...

    def reset(self) -> None: ...

    def set_switches(self, switches: Any) -> None: ...


def control_routes(
    state_of: Callable[[Request], ControlledState],
    switches_model: type[BaseModel],
    bad_request: Callable[[str], Exception],
) -> list[Route]:
    async def body(request: Request) -> dict[str, object]:
        try:
            parsed = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise bad_request(f"Invalid JSON body: {exc}") from None
        if not isinstance(parsed, dict):
            raise bad_request("Invalid JSON body: expected an object")
        return parsed

    async def list_requests(request: Request) -> Response:
        entries = state_of(request).log.entries(
            request.query_params.get("method"), request.query_params.get("path_regex")
        )
        return JSONResponse({"results": entries})

    async def clear_requests(request: Request) -> Response:
        state_of(request).log.clear()
        return Response(status_code=204)

    async def reset(request: Request) -> Response:
        state_of(request).reset()
        return Response(status_code=204)

    async def get_config(request: Request) -> Response:
        return JSONResponse(state_of(request).switches.model_dump())

    async def set_config(request: Request) -> Response:
        """Partial update: only the switches named in the body change."""
        state = state_of(request)
        changes = await body(request)
        try:
            switches = switches_model.model_validate(state.switches.model_dump() | changes)
        except ValidationError as exc:
            raise bad_request(f"Invalid sandbox config: {exc.errors(include_url=False)}") from None
        state.set_switches(switches)
        return JSONResponse(switches.model_dump())

    async def add_fault(request: Request) -> Response:
        try:
            spec = FaultSpec.model_validate(await body(request))
        except ValidationError as exc:
            raise bad_request(f"Invalid fault: {exc.errors(include_url=False)}") from None
        return JSONResponse(state_of(request).faults.add(spec).to_json(), status_code=201)

    async def list_faults(request: Request) -> Response:
        return JSONResponse({"results": [f.to_json() for f in state_of(request).faults.armed()]})

    async def clear_faults(request: Request) -> Response:
        state_of(request).faults.clear()
        return Response(status_code=204)

    return [
        Route("/_sandbox/requests", list_requests, methods=["GET"]),
        Route("/_sandbox/requests", clear_requests, methods=["DELETE"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/config", get_config, methods=["GET"]),
        Route("/_sandbox/config", set_config, methods=["POST"]),
        Route("/_sandbox/faults", add_fault, methods=["POST"]),
        Route("/_sandbox/faults", list_faults, methods=["GET"]),
        Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
    ]
