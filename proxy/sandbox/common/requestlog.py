"""What "the vendor" received: a bounded log of API requests, for tests and curious users."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import deque
from datetime import UTC, datetime


class RequestLog:
    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._entries: deque[dict[str, object]] = deque(maxlen=limit)

    def arrived(
        self, *, method: str, path: str, query: str, body: bytes, correlation_id: str
    ) -> dict[str, object]:
        """Log a request as it arrives (status None until answered): a client that timed
        out can still see that the vendor received it."""
        try:
            parsed: object = json.loads(body) if body else None
        except ValueError:  # not JSON (e.g. Stripe's form bodies): kept as text
            parsed = body.decode("utf-8", "replace")
        entry: dict[str, object] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": method,
            "path": path,
            "query": query,
            "status": None,
            "body": parsed,
            "correlation_id": correlation_id,
            "fault_id": None,
        }
        with self._lock:
            entry["seq"] = next(self._seq)
            self._entries.append(entry)
        return entry

    def answered(self, entry: dict[str, object], status: int, fault_id: int | None) -> None:
        with self._lock:
            entry.update(status=status, fault_id=fault_id)

    def entries(
        self, method: str | None = None, path_regex: str | None = None
    ) -> list[dict[str, object]]:
        with self._lock:
            entries = [dict(e) for e in self._entries]
        return [
            e
            for e in entries
            if (method is None or e["method"] == method.upper())
            and (path_regex is None or re.search(path_regex, str(e["path"])))
        ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
