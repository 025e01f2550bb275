"""The HTTP layer every connector shares: timeouts, pacing, the one retry layer, vendor
request ids, and the rule that a request which may have been applied is never sent
again unless sending it twice is harmless.

A vendor client subclasses `VendorHttp` and says only what differs: how its errors
read (`parse_error`), which of them are worth waiting for (`classify`), what its
rate-limit headers say (`observe`), and how it authenticates (`auth_headers`,
`reauthenticate` for tokens that expire).

Retry rules (DESIGN §5): connection failures before the request was sent are always
retried; 429 waits at least Retry-After; timeouts after sending and 5xx are retried
only for idempotent requests — a create whose outcome is unknown raises
OUTCOME_UNKNOWN (the journal finds out what happened) and is never sent blindly again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from proxy import metrics
from proxy.backend.params import dumps_exact, loads_exact

from .base import ApiError, ErrorKind
from .ratelimit import RateBudget, RollingWindowLimiter, SharedWindowLimiter
from .retry import Retryable, RetryPolicy, call_with_retries

log = logging.getLogger(__name__)

# Raised before any byte of the request left: always safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class HttpSettings(BaseModel):
    """The HTTP tuning every connector kind accepts (same keys for every vendor)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    # Retries (one layer, here): attempts include the first one.
    max_attempts: int = Field(default=5, ge=1)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_cap_s: float = Field(default=30.0, ge=0)
    # Our own pacing, corrected by the vendor's headers where it sends them.
    rate_limit_requests: int = Field(default=100, ge=1)
    rate_limit_interval_s: float = Field(default=10.0, gt=0)
    # The fraction of that budget this proxy may spend: 1/N for each of N replicas
    # sharing one account (the proxy further divides its share among its workers).
    rate_limit_share: float = Field(default=1.0, gt=0, le=1)
    # One budget for every worker and replica: the window is kept in the journal's
    # database under ``rate_limit_account`` (default: the connector's name), so all
    # proxies that name the same account there share it.
    rate_limit_shared: bool = False
    rate_limit_account: str | None = Field(default=None, min_length=1, max_length=200)


@dataclass(frozen=True)
class Reply:
    status: int
    body: object  # the decoded JSON body ({} when empty)
    correlation_id: str | None  # the vendor's request id
    # An earlier attempt of this request failed after it was sent (idempotent retry).
    ambiguous_retry: bool = False


def as_mapping(body: object) -> Mapping[str, object]:
    return body if isinstance(body, Mapping) else {}


def retry_after(headers: httpx.Headers) -> float:
    try:
        return max(0.0, float(headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


class VendorHttp:
    #: The vendor's name in messages ("HubSpot unreachable: …").
    vendor = "the vendor"
    #: The response header carrying the vendor's request id, lower case.
    request_id_header = "x-request-id"

    def __init__(
        self,
        settings: HttpSettings,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            transport=transport,
        )
        self._http_settings = settings
        self._limiter: RollingWindowLimiter | SharedWindowLimiter = RollingWindowLimiter(
            settings.rate_limit_requests, settings.rate_limit_interval_s, settings.rate_limit_share
        )
        self._policy = RetryPolicy(
            settings.max_attempts, settings.backoff_base_s, settings.backoff_cap_s
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def use_rate_budget(self, budget: RateBudget, account: str) -> None:
        """Pace against a budget shared with other processes (``rate_limit_shared``)
        instead of this process's own window."""
        settings = self._http_settings
        self._limiter = SharedWindowLimiter(
            budget,
            account,
            settings.rate_limit_requests,
            settings.rate_limit_interval_s,
            settings.rate_limit_share,
        )

    # -- what a vendor client overrides ------------------------------------------------

    def parse_error(
        self, status: int, body: object, *, object_type: str, correlation_id: str | None
    ) -> ApiError:
        raise NotImplementedError

    def classify(
        self, response: httpx.Response, body: object, error: ApiError, idempotent: bool
    ) -> Exception:
        """What to do with a vendor error: an ApiError (give up) or a Retryable."""
        status = response.status_code
        if status == 429:
            return Retryable(error, retry_after(response.headers))
        if status >= 500:
            return maybe_applied(error, idempotent)
        return error

    def observe(self, headers: httpx.Headers) -> None:
        """Learn the vendor's rate-limit budget from a response's headers."""

    async def auth_headers(self) -> Mapping[str, str]:
        """Per-request credentials (static ones go in the constructor's headers)."""
        return {}

    async def reauthenticate(self, error: ApiError) -> bool:
        """After a 401 that says the token expired: get a fresh one and return True to
        send the request once more (nothing was applied), else False."""
        return False

    # -- the request ---------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        object_type: str,
        idempotent: bool,
        json: object = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A 2xx reply, or ApiError after the retry rules above. ``data`` sends a
        form-encoded body; ``headers`` (e.g. an idempotency key) go on every attempt."""
        ambiguous = False
        reauthenticated = False
        attempts = 0

        async def attempt() -> Reply:
            nonlocal ambiguous, reauthenticated, attempts
            attempts += 1
            if attempts > 1:
                metrics.vendor_retry(self.vendor)
            try:
                reply = await self._once(
                    method, path, object_type, idempotent, json, data, params, headers
                )
            except Retryable as exc:
                ambiguous = ambiguous or not exc.error.retry_safe
                raise
            except ApiError as exc:
                if exc.kind is ErrorKind.AUTH and not reauthenticated:
                    reauthenticated = True
                    if await self.reauthenticate(exc):
                        raise Retryable(exc) from None
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
        data: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> Reply:
        started = time.monotonic()
        status = "error"
        try:
            async with self._limiter.slot():
                metrics.rate_limit_wait(self.vendor, time.monotonic() - started)
                started = time.monotonic()
                sent_headers = {**(await self.auth_headers()), **(headers or {})}
                content = None
                if json is not None:  # exact numbers: Decimals keep every digit
                    content = dumps_exact(json).encode()
                    sent_headers.setdefault("Content-Type", "application/json")
                response = await self._http.request(
                    method,
                    path,
                    content=content,
                    data=data,
                    params=params,
                    headers=sent_headers,
                )
                self.observe(response.headers)
                status = str(response.status_code)
        except _NOT_SENT as exc:
            raise Retryable(
                ApiError(
                    ErrorKind.UNAVAILABLE, f"{self.vendor} unreachable: {exc!r}", retry_safe=True
                )
            ) from None
        except httpx.InvalidURL as exc:  # e.g. too long: refused before anything was sent
            raise ApiError(
                ErrorKind.UNSUPPORTED, f"request to {self.vendor} not sent: {exc}", retry_safe=True
            ) from None
        except httpx.HTTPError as exc:  # sent, answer lost or unreadable
            lost = ApiError(ErrorKind.OUTCOME_UNKNOWN, f"no answer from {self.vendor}: {exc!r}")
            raise maybe_applied(lost, idempotent) from None
        finally:
            metrics.vendor_request(self.vendor, method, status, time.monotonic() - started)
        cid = response.headers.get(self.request_id_header)
        body = json_body(response)
        # The vendor's request id correlates with its logs and support; never the path
        # or body here (they carry row values).
        context = {"vendor": self.vendor, "vendor_request_id": cid, "http_status": status}
        if response.is_success:
            log.debug("%s %s %s: %s", self.vendor, method, object_type, status, extra=context)
            return Reply(response.status_code, body, cid)
        log.info(
            "%s answered HTTP %s to %s %s (request %s)",
            self.vendor,
            status,
            method,
            object_type,
            cid or "without id",
            extra=context,
        )
        error = self.parse_error(
            response.status_code, body, object_type=object_type, correlation_id=cid
        )
        raise self.classify(response, body, error, idempotent)


def maybe_applied(error: ApiError, idempotent: bool) -> Exception:
    """The request may have been applied: retry only if doing it twice is harmless."""
    kind = ErrorKind.UNAVAILABLE if idempotent else ErrorKind.OUTCOME_UNKNOWN
    unknown = replace(error, kind=kind, retry_safe=False)
    return Retryable(unknown) if idempotent else unknown


def json_body(response: httpx.Response) -> object:
    """The JSON answer, its numbers exact (Decimals, not floats: a Salesforce currency
    of 18 digits must reach the local row unrounded)."""
    if not response.content:
        return {}
    try:
        body: object = loads_exact(response.content.decode(response.encoding or "utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {"message": response.text[:500]}
    return body if isinstance(body, Mapping | list) else {"message": str(body)[:500]}


def as_list(value: object) -> list[Mapping[str, object]]:
    """The JSON objects in ``value`` if it is a list (else none)."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def segment(value: object) -> str:
    """A value (an object id) as one URL path segment. ``quote`` escapes "/", "?" and
    "#", but "." and ".." would still be read as dot segments and change the path (an
    UPDATE of id "." would become a create): such an id names no object."""
    text = str(value)
    if text in ("", ".", ".."):
        raise ApiError(ErrorKind.NOT_FOUND, f"no object has the id {text!r}", retry_safe=True)
    return quote(text, safe="")
