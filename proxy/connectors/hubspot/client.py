"""HTTP to HubSpot: the shared layer (`..http`) with HubSpot's auth, errors and waits.

HubSpot's retry rules (DESIGN §5): 429 waits at least the policy window (or
Retry-After) and is never retried for the DAILY policy; 423 (record locked) waits
`locked_wait_s`; 477 (migration in progress) is retried; the rest as `VendorHttp`.
"""

from __future__ import annotations

from dataclasses import replace

import httpx

from ..base import ApiError, ErrorKind
from ..http import Reply, VendorHttp, as_mapping, retry_after
from ..retry import Retryable
from .errors import parse_error
from .settings import HubSpotSettings

CORRELATION_HEADER = "x-hubspot-correlation-id"

__all__ = ["CORRELATION_HEADER", "HubSpotClient", "Reply"]


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    return int(value) if value and value.isdigit() else None


class HubSpotClient(VendorHttp):
    vendor = "HubSpot"
    request_id_header = CORRELATION_HEADER

    def __init__(self, settings: HubSpotSettings) -> None:
        super().__init__(
            settings, headers={"Authorization": f"Bearer {settings.token.get_secret_value()}"}
        )
        self._settings = settings

    def parse_error(
        self, status: int, body: object, *, object_type: str, correlation_id: str | None
    ) -> ApiError:
        return parse_error(
            status, as_mapping(body), object_type=object_type, correlation_id=correlation_id
        )

    def classify(
        self, response: httpx.Response, body: object, error: ApiError, idempotent: bool
    ) -> Exception:
        status, wait = response.status_code, retry_after(response.headers)
        if status == 429:
            policy = str(as_mapping(body).get("policyName", ""))
            if policy == "DAILY":
                return error
            window = self._settings.ten_secondly_wait_s if policy == "TEN_SECONDLY_ROLLING" else 0
            return Retryable(error, max(wait, window))
        if status == 423:
            return Retryable(error, max(wait, self._settings.locked_wait_s))
        if status == 477:  # migration in progress: nothing was applied
            return Retryable(replace(error, kind=ErrorKind.UNAVAILABLE), wait)
        return super().classify(response, body, error, idempotent)

    def observe(self, headers: httpx.Headers) -> None:
        interval_ms = _int_header(headers, "x-hubspot-ratelimit-interval-milliseconds")
        self._limiter.observe(
            _int_header(headers, "x-hubspot-ratelimit-max"),
            _int_header(headers, "x-hubspot-ratelimit-remaining"),
            interval_ms / 1000 if interval_ms else None,
        )
