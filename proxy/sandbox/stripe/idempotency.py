"""Stripe's idempotency layer: the first response to a POST or DELETE carrying an
`Idempotency-Key` is saved under (API key, idempotency key) and replayed for a retry with
the same parameters; other parameters are refused, as is a retry while the first request
still runs. Keys are forgotten after a TTL (Stripe: at least 24 hours)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Literal

MAX_KEY_LENGTH = 255

Scope = tuple[str, str]  # (API key, idempotency key)


@dataclass(frozen=True)
class Saved:
    fingerprint: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    request_id: str
    saved_at: float


@dataclass(frozen=True)
class Claim:
    outcome: Literal["new", "replay", "mismatch", "in_flight"]
    saved: Saved | None = None


class IdempotencyStore:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._saved: dict[Scope, Saved] = {}
        self._running: dict[Scope, str] = {}

    def begin(self, scope: Scope, fingerprint: str) -> Claim:
        """Claim the key for a request, or say why it cannot run."""
        with self._lock:
            self._prune()
            if scope in self._running:
                return Claim("in_flight")
            saved = self._saved.get(scope)
            if saved is not None:
                if saved.fingerprint != fingerprint:
                    return Claim("mismatch")
                return Claim("replay", saved)
            self._running[scope] = fingerprint
            return Claim("new")

    def finish(self, scope: Scope, saved: Saved | None) -> None:
        """Release the claim, saving the response (None: nothing to replay, retry runs)."""
        with self._lock:
            self._running.pop(scope, None)
            if saved is not None:
                self._saved[scope] = saved

    def clear(self) -> None:
        with self._lock:
            self._saved.clear()
            self._running.clear()

    def _prune(self) -> None:
        cutoff = time.monotonic() - self.ttl_s
        for scope in [s for s, v in self._saved.items() if v.saved_at <= cutoff]:
            del self._saved[scope]
