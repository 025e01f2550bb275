"""Which bearer tokens the org accepts: configured static ones and access tokens issued
by the OAuth token endpoint, each living `token_ttl_s` from its issue."""

from __future__ import annotations

import hmac
import secrets
import string
import threading
import time
from collections.abc import Sequence

from .ids import ORG_ID

_TOKEN_CHARS = string.ascii_letters + string.digits + "._"


class TokenBook:
    def __init__(self, static: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._static = list(static)
        self._static_enabled = True
        self._issued: dict[str, float] = {}

    def reset(self) -> None:
        with self._lock:
            self._static_enabled = True
            self._issued.clear()

    def issue(self, ttl_s: float) -> str:
        """An access token shaped like Salesforce's: `<15-char org id>!<opaque>`."""
        opaque = "AQ" + "".join(secrets.choice(_TOKEN_CHARS) for _ in range(94))
        token = f"{ORG_ID[:15]}!{opaque}"
        with self._lock:
            self._issued[token] = time.monotonic() + ttl_s
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            if self._static_enabled and any(
                hmac.compare_digest(token.encode(), s.encode()) for s in self._static
            ):
                return True
            expiry = self._issued.get(token)
            if expiry is None:
                return False
            if expiry <= time.monotonic():
                del self._issued[token]
                return False
            return True

    def expire(self, *, static: bool) -> int:
        """Ends every issued session (and, with `static`, the static tokens until reset)."""
        with self._lock:
            count = len(self._issued)
            self._issued.clear()
            if static:
                self._static_enabled = False
            return count
