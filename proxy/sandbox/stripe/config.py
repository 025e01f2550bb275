"""Sandbox settings: fixed at startup (API key, version, limits) and switchable at runtime."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RateLimitConfig(BaseModel):
    """A rolling window of API requests; Stripe's is per account (25/s in test mode)."""

    model_config = ConfigDict(extra="forbid")

    max_requests: int = Field(gt=0)
    window_s: float = Field(default=1.0, gt=0)


class Switches(BaseModel):
    """What `POST /_sandbox/config` may change; `/_sandbox/reset` restores the startup values."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    rate_limit: RateLimitConfig | None = None


class StripeSandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = "sk_test_sandbox"
    # Echoed as `Stripe-Version` when a request names none (Stripe uses the account's).
    api_version: str = "2024-06-20"
    switches: Switches = Switches()
    request_log_limit: int = Field(default=10_000, gt=0)
    # Stripe keeps idempotency keys for at least 24 hours.
    idempotency_ttl_s: float = Field(default=86_400.0, gt=0)
