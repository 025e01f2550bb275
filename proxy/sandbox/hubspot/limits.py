"""The portal's API rate limit: a rolling window of request times, HubSpot's headers."""

from __future__ import annotations

import threading
import time
from collections import deque

from .config import RateLimitConfig


class RollingWindow:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: deque[float] = deque()

    def clear(self) -> None:
        with self._lock:
            self._times.clear()

    def admit(self, limit: RateLimitConfig) -> tuple[bool, int]:
        """Whether one more request fits, and how many remain after it."""
        now = time.monotonic()
        with self._lock:
            while self._times and self._times[0] <= now - limit.window_s:
                self._times.popleft()
            if len(self._times) >= limit.max_requests:
                return False, 0
            self._times.append(now)
            return True, limit.max_requests - len(self._times)


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
