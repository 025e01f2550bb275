"""HubSpot's rendering of an injected fault (the fault book is shared by all sandboxes)."""

from __future__ import annotations

from ..common.faults import FaultSpec
from .errors import HubSpotError, rate_limited

_CATEGORIES = {423: "LOCKED", 429: "RATE_LIMITS"}


def fault_body(spec: FaultSpec, correlation_id: str, portal_id: int) -> dict[str, object]:
    if isinstance(spec.body, dict):
        return {"correlationId": correlation_id, **spec.body}
    status = spec.status or 500
    if status == 429:
        error = rate_limited("TEN_SECONDLY_ROLLING", portal_id)
    else:
        category = _CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "FAULT")
        error = HubSpotError(status, f"Injected fault: HTTP {status}", category)
    return error.body(correlation_id)
