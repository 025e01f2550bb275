"""HubSpot connector settings; every wait and limit is configurable so tests run fast."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class HubSpotSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr
    base_url: str = "https://api.hubapi.com"
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=100, ge=1, le=100)
    # Retries (one layer, in the client): attempts include the first one.
    max_attempts: int = Field(default=5, ge=1)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_cap_s: float = Field(default=30.0, ge=0)
    # HubSpot: after a TEN_SECONDLY_ROLLING 429 wait at least the window; 423 wait 2 s.
    ten_secondly_wait_s: float = Field(default=10.0, ge=0)
    locked_wait_s: float = Field(default=2.0, ge=0)
    # Our own pacing (HubSpot's default private-app burst limit), corrected by headers.
    rate_limit_requests: int = Field(default=100, ge=1)
    rate_limit_interval_s: float = Field(default=10.0, gt=0)
