"""HubSpot connector settings; every wait and limit is configurable so tests run fast."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ..http import HttpSettings


class HubSpotSettings(HttpSettings):
    token: SecretStr
    base_url: str = "https://api.hubapi.com"
    batch_size: int = Field(default=100, ge=1, le=100)
    # HubSpot: after a TEN_SECONDLY_ROLLING 429 wait at least the window; 423 wait 2 s.
    ten_secondly_wait_s: float = Field(default=10.0, ge=0)
    locked_wait_s: float = Field(default=2.0, ge=0)
