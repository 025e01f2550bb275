"""HTTP to HubSpot: auth, timeouts, pacing, and the single retry layer.

Retry rules (DESIGN §5): 429 waits at least the policy window (or Retry-After) and
is never retried for the DAILY policy; 423 (record locked) waits `locked_wait_s`; 477
and connection failures before the request was sent are retried. Timeouts after
sending and 5xx are retried only for idempotent requests: a create whose outcome is
unknown raises OUTCOME_UNKNOWN and is never blindly sent again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import httpx

from ..base import ApiError, ErrorKind
from ..ratelimit import RollingWindowLimiter
from ..retry import Retryable, RetryPolicy, call_with_retries
from .errors import parse_error
from .settings import HubSpotSettings

CORRELATION_HEADER = "x-hubspot-correlation-id"
# Raised before any byte of the request left: always safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Mapping[str, object]
    correlation_id: str | None
    # An earlier attempt of this request failed after it was sent (idempotent retry).
    ambiguous_retry: bool = False


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    return int(value) if value and value.isdigit() else None


def _retry_after(headers: httpx.Headers) -> float:
    try:
        return float(headers.get("retry-after", "0"))
    except ValueError:
        return 0.0


class HubSpotClient:
    def __init__(self, settings: HubSpotSettings) -> None:
        self._settings = settings
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"},
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
        )
        self._limiter = RollingWindowLimiter(
            settings.rate_limit_requests, settings.rate_limit_interval_s
        )
        self._policy = RetryPolicy(
            settings.max_attempts, settings.backoff_base_s, settings.backoff_cap_s
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        object_type: str,
        idempotent: bool,
        json: object = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """A 2xx/207 reply, or ApiError after the retry rules above."""
        ambiguous = False

        async def attempt() -> Reply:
            nonlocal ambiguous
            try:
                reply = await self._once(method, path, object_type, idempotent, json, params)
            except Retryable as exc:
                ambiguous = ambiguous or not exc.error.retry_safe
                raise
            return Reply(reply.status, reply.body, reply.correlation_id, ambiguous)

        try:
            return await call_with_retries(attempt, self._policy)
        except ApiError as exc:
            # A later definite rejection does not undo an earlier ambiguous attempt.
            raise replace(exc, retry_safe=exc.retry_safe and not ambiguous) from None

    async def _once(
        self,
        method: str,
        path: str,
        object_type: str,
        idempotent: bool,
        json: object,
        params: Mapping[str, str] | None,
    ) -> Reply:
        try:
            async with self._limiter.slot():
                response = await self._http.request(method, path, json=json, params=params)
                self._observe(response.headers)
        except _NOT_SENT as exc:
            raise Retryable(
                ApiError(ErrorKind.UNAVAILABLE, f"HubSpot unreachable: {exc!r}", retry_safe=True)
            ) from None
        except httpx.TransportError as exc:
            lost = ApiError(ErrorKind.OUTCOME_UNKNOWN, f"no answer from HubSpot: {exc!r}")
            raise _maybe_applied(lost, idempotent) from None
        cid = response.headers.get(CORRELATION_HEADER)
        body = _json_body(response)
        if response.is_success:
            return Reply(response.status_code, body, cid)
        error = parse_error(response.status_code, body, object_type=object_type, correlation_id=cid)
        raise self._classify(response, body, error, idempotent)

    def _classify(
        self,
        response: httpx.Response,
        body: Mapping[str, object],
        error: ApiError,
        idempotent: bool,
    ) -> Exception:
        status, wait = response.status_code, _retry_after(response.headers)
        if status == 429:
            policy = str(body.get("policyName", ""))
            if policy == "DAILY":
                return error
            window = self._settings.ten_secondly_wait_s if policy == "TEN_SECONDLY_ROLLING" else 0
            return Retryable(error, max(wait, window))
        if status == 423:
            return Retryable(error, max(wait, self._settings.locked_wait_s))
        if status == 477:  # migration in progress: nothing was applied
            return Retryable(replace(error, kind=ErrorKind.UNAVAILABLE), wait)
        if status >= 500:
            return _maybe_applied(error, idempotent)
        return error

    def _observe(self, headers: httpx.Headers) -> None:
        interval_ms = _int_header(headers, "x-hubspot-ratelimit-interval-milliseconds")
        self._limiter.observe(
            _int_header(headers, "x-hubspot-ratelimit-max"),
            _int_header(headers, "x-hubspot-ratelimit-remaining"),
            interval_ms / 1000 if interval_ms else None,
        )


def _maybe_applied(error: ApiError, idempotent: bool) -> Exception:
    """The request may have been applied: retry only if doing it twice is harmless."""
    kind = ErrorKind.UNAVAILABLE if idempotent else ErrorKind.OUTCOME_UNKNOWN
    unknown = replace(error, kind=kind, retry_safe=False)
    return Retryable(unknown) if idempotent else unknown


def _json_body(response: httpx.Response) -> Mapping[str, object]:
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text[:500]}
    return body if isinstance(body, Mapping) else {"message": str(body)[:500]}
