"""The path every API request takes before its route, in Stripe's order: request id,
request log, authentication, API version, rate limit, injected faults, then the
idempotency layer (which runs the route, or replays or refuses). `/_sandbox/` requests
only get a request id.

Faults sit outside the idempotency layer: a plain fault answers before the request runs
(nothing is saved, a retry runs it); an `apply` fault runs it through the idempotency
layer, so its success is saved and a retry with the same key gets it replayed."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import re
import time

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

from ..common.faults import ArmedFault
from . import errors, ids
from .faults import fault_response
from .idempotency import MAX_KEY_LENGTH, Saved
from .state import SandboxState
from .web import error_response, read_params, sandbox

CONTROL_PREFIX = "/_sandbox/"
IDEMPOTENT_METHODS = frozenset({"POST", "DELETE"})
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$")


class Gateway(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        rid = ids.request_id()
        request.state.request_id = rid
        if request.url.path.startswith(CONTROL_PREFIX):
            response = await call_next(request)
            response.headers["Request-Id"] = rid
            return response
        state = sandbox(request)
        key = request.headers.get("idempotency-key") or None
        entry = state.log.arrived(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            body=await request.body(),
            correlation_id=rid,
        )
        # Beside the raw form text, the decoded parameters, and what idempotency did.
        entry.update(params=await read_params(request), idempotency_key=key, replayed=False)
        flow = _Flow(request, call_next, state, rid, key, entry)
        response, fault = await flow.process()
        response.headers["Request-Id"] = rid
        response.headers["Stripe-Version"] = (
            request.headers.get("stripe-version") or state.config.api_version
        )
        state.log.answered(entry, response.status_code, fault.id if fault else None)
        return response


class _Flow:
    """One API request's way through the gateway."""

    def __init__(
        self,
        request: Request,
        call_next: RequestResponseEndpoint,
        state: SandboxState,
        rid: str,
        key: str | None,
        entry: dict[str, object],
    ) -> None:
        self.request = request
        self.call_next = call_next
        self.state = state
        self.rid = rid
        self.key = key
        self.entry = entry

    async def process(self) -> tuple[Response, ArmedFault | None]:
        given = _api_key(self.request)
        if given is None or not hmac.compare_digest(
            given.encode(), self.state.config.api_key.encode()
        ):
            refused = error_response(errors.unauthorized(given), self.rid)
            refused.headers["WWW-Authenticate"] = 'Basic realm="Stripe"'
            return refused, None
        version = self.request.headers.get("stripe-version")
        if version is not None and not _VERSION.match(version):
            return error_response(errors.invalid_version(version), self.rid), None
        limit = self.state.switches.rate_limit
        if limit is not None:
            admitted, _ = self.state.window.admit(limit.max_requests, limit.window_s)
            if not admitted:
                return error_response(errors.rate_limited(), self.rid), None
        fault = self.state.faults.take(self.request.method, self.request.url.path)
        spec = fault.spec if fault else None
        if spec is not None and spec.status is not None and not spec.apply:
            await _sleep_ms(spec.delay_ms)
            return fault_response(spec, self.rid), fault
        stall = spec.delay_ms if spec is not None and not spec.apply else 0.0
        response = await self.idempotent(given, stall)
        if spec is not None and spec.apply:
            await _sleep_ms(spec.delay_ms)
            if spec.status is not None:
                return fault_response(spec, self.rid), fault
        return response, fault

    async def idempotent(self, api_key: str, stall_ms: float) -> Response:
        key = self.key
        if key is None or self.request.method not in IDEMPOTENT_METHODS:
            return await self.execute(stall_ms)
        if len(key) > MAX_KEY_LENGTH:
            return error_response(errors.idempotency_key_too_long(len(key)), self.rid)
        scope = (api_key, key)
        fingerprint = await self.fingerprint()
        claim = self.state.idempotency.begin(scope, fingerprint)
        if claim.outcome == "in_flight":
            return error_response(errors.idempotency_in_use(key), self.rid)
        if claim.outcome == "mismatch":
            return error_response(errors.idempotency_mismatch(key), self.rid)
        if claim.saved is not None:
            self.entry["replayed"] = True
            return _replay(claim.saved, key)
        saved = None
        try:
            response = await self.execute(stall_ms)
            if self.saveable(response):
                saved = Saved(
                    fingerprint,
                    response.status_code,
                    tuple(response.headers.items()),
                    bytes(response.body),
                    self.rid,
                    time.monotonic(),
                )
        finally:
            self.state.idempotency.finish(scope, saved)
        response.headers["Idempotency-Key"] = key
        response.headers["Original-Request"] = self.rid
        return response

    async def execute(self, stall_ms: float) -> Response:
        """Run the route (after the switched latency and any stalling fault)."""
        await _sleep_ms(self.state.switches.latency_ms + stall_ms)
        return await _materialize(await self.call_next(self.request))

    async def fingerprint(self) -> str:
        params = await read_params(self.request)
        return json.dumps([self.request.method, self.request.url.path, params], sort_keys=True)

    def saveable(self, response: Response) -> bool:
        """Stripe saves a result once the endpoint began executing; this sandbox (like its
        clients expect) does not save 5xx or 429 answers, nor unrecognised URLs."""
        status = response.status_code
        routed = not getattr(self.request.state, "unrouted", False)
        return routed and status < 500 and status != 429


def _replay(saved: Saved, key: str) -> Response:
    headers = {k: v for k, v in saved.headers if k.lower() != "content-length"}
    response = Response(saved.body, status_code=saved.status, headers=headers)
    response.headers["Idempotent-Replayed"] = "true"
    response.headers["Idempotency-Key"] = key
    response.headers["Original-Request"] = saved.request_id
    return response


async def _materialize(response: Response) -> Response:
    """The downstream (streaming) response read into bytes, so it can be saved."""
    chunks: list[bytes] = []
    body_iterator = getattr(response, "body_iterator", None)
    if body_iterator is None:
        return response
    async for chunk in body_iterator:
        chunks.append(chunk.encode() if isinstance(chunk, str) else bytes(chunk))
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(b"".join(chunks), status_code=response.status_code, headers=headers)


def _api_key(request: Request) -> str | None:
    """Bearer auth, or Basic auth with the key as the user name (`curl -u sk_test_...:`)."""
    header = request.headers.get("authorization", "").strip()
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            value = base64.b64decode(value, validate=True).decode().partition(":")[0]
    elif scheme.lower() != "bearer":
        value = header
    return value or None


async def _sleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)
