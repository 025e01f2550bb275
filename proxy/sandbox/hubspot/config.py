"""Sandbox settings: fixed at startup (token, schemas) and switchable at runtime."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .schema import PropertyDef

BatchErrors = Literal["auto", "all_or_nothing", "multi_status"]


class RateLimitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_requests: int = Field(gt=0)
    window_s: float = Field(default=10.0, gt=0)
    policy: Literal["TEN_SECONDLY_ROLLING", "SECONDLY", "DAILY"] = "TEN_SECONDLY_ROLLING"
    # HubSpot documents no Retry-After on API 429s; set this to emulate one anyway.
    retry_after_s: float | None = None


class Switches(BaseModel):
    """What `POST /_sandbox/config` may change; `/_sandbox/reset` restores the startup values.

    `batch_errors`: HubSpot rejects a whole batch create/upsert with 400/409 when one input
    is invalid, unless every input carries an `objectWriteTraceId` (then it answers 207
    with per-input errors). "auto" follows that rule; the other two force one behaviour.
    `shuffle_results`: HubSpot does not promise batch results in input order; shuffling
    catches clients that assume it.
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    rate_limit: RateLimitConfig | None = None
    batch_errors: BatchErrors = "auto"
    shuffle_results: bool = False


class ObjectTypeSpec(BaseModel):
    """Extra properties for a standard type, or the schema of a custom object type."""

    model_config = ConfigDict(extra="forbid")

    properties: list[PropertyDef] = []
    required: list[str] = []


class SandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = "sandbox-token"
    portal_id: int = 1234567
    object_types: dict[str, ObjectTypeSpec] = {}
    switches: Switches = Switches()
    request_log_limit: int = Field(default=10_000, gt=0)
