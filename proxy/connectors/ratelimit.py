"""Pacing per credential, so we stay under the vendor's limit instead of collecting 429s.

HubSpot's burst limit is a *rolling* window (at most N requests in any 10 s). A token
bucket of the same rate can send up to 2N in one window (a full bucket plus its refill),
so this limiter counts the requests of the last window instead. A request occupies its
slot from send until one window after its answer: the vendor saw it arrive before we saw
the answer, so our window always covers the vendor's, whatever the network jitter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Protocol

from .base import ApiError, ErrorKind

log = logging.getLogger(__name__)


class RollingWindowLimiter:
    """``share``: the fraction of the account's budget this process may spend (the
    proxy gives each of its N workers 1/N, so together they keep to the budget)."""

    def __init__(self, max_requests: int, interval_s: float, share: float = 1.0) -> None:
        self._share = share
        self._max = self._part(max_requests)
        self._interval_s = interval_s
        self._answered: deque[float] = deque()
        self._in_flight = 0
        self._changed = asyncio.Condition()

    def _part(self, budget: int) -> int:
        return max(1, int(budget * self._share))

    def _expire(self, now: float) -> None:
        while self._answered and self._answered[0] <= now - self._interval_s:
            self._answered.popleft()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request's place in the window while it is sent and answered."""
        async with self._changed:
            while True:
                now = time.monotonic()
                self._expire(now)
                if len(self._answered) + self._in_flight < self._max:
                    break
                wake = self._answered[0] + self._interval_s - now if self._answered else None
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wake)
            self._in_flight += 1
        try:
            yield
        finally:
            async with self._changed:
                self._in_flight -= 1
                self._answered.append(time.monotonic())
                self._changed.notify_all()

    def observe(self, limit: int | None, remaining: int | None, interval_s: float | None) -> None:
        """Adopt the vendor's window from its headers, and never believe we have more
        room than it says remains (other clients of the account spend from it too)."""
        if limit and interval_s:
            self._max, self._interval_s = self._part(limit), interval_s
        if remaining is None:
            return
        now = time.monotonic()
        self._expire(now)
        surplus = (self._max - len(self._answered) - self._in_flight) - remaining
        self._answered.extend([now] * max(0, surplus))


class RateBudget(Protocol):
    """A rolling window kept outside the process (``proxy.journal.budget``: a table in
    PostgreSQL), so every worker and replica of the proxy spends from one budget."""

    async def take(
        self, account: str, max_requests: int, interval_s: float
    ) -> tuple[int | None, float]:
        """(a slot id, 0) if the window has room, else (None, seconds until it may)."""
        ...

    async def answered(self, slot: int) -> None:
        """The request in ``slot`` was answered: its window starts now."""
        ...


class SharedWindowLimiter:
    """``RollingWindowLimiter``'s rule over a ``RateBudget``: at most ``max_requests``
    in any ``interval_s`` for ``account``, counted across every process that shares
    the budget, each request from its send until one window after its answer."""

    #: Bounds on a wait between two tries (another process may free a slot sooner).
    MIN_WAIT_S = 0.01

    def __init__(
        self,
        budget: RateBudget,
        account: str,
        max_requests: int,
        interval_s: float,
        share: float = 1.0,
    ) -> None:
        self._budget = budget
        self._account = account
        #: The part of the account's budget writeproxy may spend (other integrations
        #: on the same account spend the rest), kept when the vendor's headers
        #: announce the account's limit.
        self._share = share
        self._max = self._part(max_requests)
        self._interval_s = interval_s

    def _part(self, budget: int) -> int:
        return max(1, int(budget * self._share))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        while True:
            try:
                taken, wait_s = await self._budget.take(self._account, self._max, self._interval_s)
            except Exception as exc:  # nothing was sent
                raise ApiError(
                    ErrorKind.UNAVAILABLE,
                    f"the shared vendor rate budget is unreachable ({type(exc).__name__}); "
                    "the request was not sent",
                    retry_safe=True,
                ) from exc
            if taken is not None:
                break
            await asyncio.sleep(min(max(wait_s, self.MIN_WAIT_S), self._interval_s))
        try:
            yield
        finally:
            try:
                await self._budget.answered(taken)
            except Exception as exc:  # the slot keeps its send time: a little less margin
                log.warning("cannot record a vendor answer in the shared rate budget: %s", exc)

    def observe(self, limit: int | None, remaining: int | None, interval_s: float | None) -> None:
        """Adopt the vendor's window from its headers (our share of it)."""
        if limit and interval_s:
            self._max, self._interval_s = self._part(limit), interval_s
