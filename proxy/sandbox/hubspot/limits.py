"""The portal's API rate limit: HubSpot's rate-limit headers."""

from __future__ import annotations

from .config import RateLimitConfig


def limit_headers(limit: RateLimitConfig, remaining: int) -> dict[str, str]:
    if limit.policy == "DAILY":
        return {
            "X-HubSpot-RateLimit-Daily": str(limit.max_requests),
            "X-HubSpot-RateLimit-Daily-Remaining": str(remaining),
        }
    return {
        "X-HubSpot-RateLimit-Max": str(limit.max_requests),
        "X-HubSpot-RateLimit-Remaining": str(remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(limit.window_s * 1000)),
    }
