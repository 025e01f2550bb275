"""HTTP to Stripe: the shared layer (`..http`) with Stripe's auth, pinned version,
form bodies and retry rules.

Every POST and DELETE carries an ``Idempotency-Key`` (derived from the journal's call
id, the same on every retry), so every Stripe request is safe to send again: Stripe
replays the first answer. Retries follow ``Stripe-Should-Retry`` when Stripe sends it.
"""

from __future__ import annotations

import httpx

from ..base import ApiError
from ..http import VendorHttp, as_mapping, retry_after
from ..retry import Retryable
from .errors import parse_error
from .settings import StripeSettings


class StripeClient(VendorHttp):
    vendor = "Stripe"
    request_id_header = "request-id"

    def __init__(self, settings: StripeSettings) -> None:
        super().__init__(
            settings,
            headers={
                "Authorization": f"Bearer {settings.token.get_secret_value()}",
                "Stripe-Version": settings.stripe_version,
            },
        )

    def parse_error(
        self, status: int, body: object, *, object_type: str, correlation_id: str | None
    ) -> ApiError:
        return parse_error(status, as_mapping(body), correlation_id=correlation_id)

    def classify(
        self, response: httpx.Response, body: object, error: ApiError, idempotent: bool
    ) -> Exception:
        should = response.headers.get("stripe-should-retry")
        if should == "true" and response.status_code < 500:
            return Retryable(error, retry_after(response.headers))
        # A 5xx (Stripe sends "true" with its api_error) may have been applied: the
        # shared rule retries it under the same Idempotency-Key but marks it not
        # retry-safe, so retries that run out leave an unknown outcome for the journal
        # to resolve, never "nothing was applied".
        if should == "false" and response.status_code < 500:
            return error
        return super().classify(response, body, error, idempotent)
