"""A vendor account's API rate limit as a rolling window of request times."""

from __future__ import annotations

import threading
import time
from collections import deque


class RollingWindow:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: deque[float] = deque()

    def clear(self) -> None:
        with self._lock:
            self._times.clear()

    def admit(self, max_requests: int, window_s: float) -> tuple[bool, int]:
        """Whether one more request fits, and how many remain after it."""
        now = time.monotonic()
        with self._lock:
            while self._times and self._times[0] <= now - window_s:
                self._times.popleft()
            if len(self._times) >= max_requests:
                return False, 0
            self._times.append(now)
            return True, max_requests - len(self._times)
