"""Stripe connector settings. Stripe has no batch API (one object per request), so
there is no ``batch_size``; pacing defaults to Stripe's documented test-mode limit."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ..http import HttpSettings


class StripeSettings(HttpSettings):
    token: SecretStr  # the secret key (token_env = "STRIPE_SECRET_KEY")
    base_url: str = "https://api.stripe.com"
    # Pinned so Stripe's answers keep the shape this connector reads.
    stripe_version: str = "2024-06-20"
    # A request Stripe still processes (its answer was lost to a timeout) is asked
    # about again every inflight_poll_s until inflight_wait_s has passed.
    inflight_wait_s: float = Field(default=60.0, ge=0)
    inflight_poll_s: float = Field(default=0.5, gt=0)
    # Stripe allows 25 requests/s in test mode and 100/s in live mode.
    rate_limit_requests: int = Field(default=25, ge=1)
    rate_limit_interval_s: float = Field(default=1.0, gt=0)
