"""proxy.connectors.ratelimit (the rolling-window limiter, on short real windows) and
proxy.connectors.retry (the one retry layer, with tenacity's sleep recorded instead of
slept)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tenacity import AsyncRetrying

from proxy.connectors import retry
from proxy.connectors.base import ApiError, ErrorKind
from proxy.connectors.ratelimit import RollingWindowLimiter, SharedWindowLimiter
from proxy.connectors.retry import Retryable, RetryPolicy, call_with_retries

WINDOW = 0.15
#: Timer slack: the limiter must never admit early, and should not be much later.
EARLY = 0.01


async def take(limiter: RollingWindowLimiter, hold: float = 0.0) -> float:
    """Hold a slot for ``hold`` seconds; return when it was granted (monotonic)."""
    async with limiter.slot():
        granted = time.monotonic()
        if hold:
            await asyncio.sleep(hold)
    return granted


async def test_requests_below_the_limit_do_not_wait() -> None:
    limiter = RollingWindowLimiter(3, WINDOW)
    start = time.monotonic()
    granted = await asyncio.gather(*(take(limiter) for _ in range(3)))
    assert max(granted) - start < WINDOW / 2


async def test_the_next_request_waits_one_window_after_the_first_answer() -> None:
    limiter = RollingWindowLimiter(2, WINDOW)
    start = time.monotonic()
    first, second = await asyncio.gather(take(limiter), take(limiter))
    third = await take(limiter)
    assert first - start < WINDOW / 2 and second - start < WINDOW / 2
    assert third - first >= WINDOW - EARLY
    assert third - first < WINDOW * 3


async def test_in_flight_requests_occupy_their_slot() -> None:
    limiter = RollingWindowLimiter(1, WINDOW)
    start = time.monotonic()
    holder = asyncio.create_task(take(limiter, hold=0.05))
    await asyncio.sleep(0)
    second = await take(limiter)
    await holder
    # The slot is held 0.05 s, then counts for a window after its answer.
    assert second - start >= 0.05 + WINDOW - EARLY


async def test_observe_adopts_the_vendors_window() -> None:
    limiter = RollingWindowLimiter(100, 10.0)
    limiter.observe(2, None, WINDOW)
    start = time.monotonic()
    await take(limiter)
    await take(limiter)
    third = await take(limiter)
    assert third - start >= WINDOW - EARLY


async def test_observe_never_believes_in_more_room_than_remains() -> None:
    limiter = RollingWindowLimiter(5, WINDOW)
    limiter.observe(None, 0, None)  # another client spent the account's whole window
    start = time.monotonic()
    granted = await take(limiter)
    assert granted - start >= WINDOW - EARLY


async def test_observe_with_room_left_or_no_headers_changes_nothing() -> None:
    limiter = RollingWindowLimiter(2, WINDOW)
    limiter.observe(None, None, None)
    limiter.observe(0, 5, 0)  # zero limit/interval are ignored; 5 remaining > our 2
    start = time.monotonic()
    granted = await asyncio.gather(take(limiter), take(limiter))
    assert max(granted) - start < WINDOW / 2


async def test_a_failing_request_still_counts_and_frees_its_slot() -> None:
    limiter = RollingWindowLimiter(1, WINDOW)
    with pytest.raises(RuntimeError):
        async with limiter.slot():
            raise RuntimeError("boom")
    start = time.monotonic()
    granted = await take(limiter)
    assert WINDOW - EARLY - 0.02 <= granted - start < WINDOW * 3


# --- retry --------------------------------------------------------------------------


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record tenacity's waits instead of sleeping; make the jitter its upper bound."""
    recorded: list[float] = []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(retry, "AsyncRetrying", functools.partial(AsyncRetrying, sleep=sleep))
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)
    return recorded


def attempts(*outcomes: Any) -> tuple[Callable[[], Awaitable[Any]], list[int]]:
    """An attempt function raising/returning ``outcomes`` in turn, and its call count."""
    calls: list[int] = []

    async def attempt() -> Any:
        calls.append(1)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return attempt, calls


def retryable(message: str = "busy", min_wait_s: float = 0.0) -> Retryable:
    return Retryable(ApiError(ErrorKind.UNAVAILABLE, message), min_wait_s)


async def test_success_first_time(sleeps: list[float]) -> None:
    attempt, calls = attempts("ok")
    assert await call_with_retries(attempt, RetryPolicy()) == "ok"
    assert (len(calls), sleeps) == (1, [])


async def test_retries_with_capped_exponential_backoff(sleeps: list[float]) -> None:
    attempt, calls = attempts(*(retryable() for _ in range(5)), "ok")
    policy = RetryPolicy(max_attempts=6, base_s=0.5, cap_s=3.0)
    assert await call_with_retries(attempt, policy) == "ok"
    assert len(calls) == 6
    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_jitter_is_between_zero_and_the_backoff(
    sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return low

    monkeypatch.setattr(retry.random, "uniform", uniform)
    attempt, _ = attempts(retryable(), retryable(), "ok")
    await call_with_retries(attempt, RetryPolicy(base_s=1.0))
    assert bounds == [(0, 1.0), (0, 2.0)]
    assert sleeps == [0, 0]


async def test_the_vendors_requested_wait_is_a_minimum(sleeps: list[float]) -> None:
    attempt, _ = attempts(retryable(min_wait_s=2.5), retryable(min_wait_s=0.1), "ok")
    await call_with_retries(attempt, RetryPolicy(base_s=0.5, cap_s=30))
    assert sleeps == [2.5, 1.0]


async def test_attempts_run_out_raise_the_last_api_error(sleeps: list[float]) -> None:
    attempt, calls = attempts(retryable("first"), retryable("second"), retryable("third"))
    with pytest.raises(ApiError) as caught:
        await call_with_retries(attempt, RetryPolicy(max_attempts=3))
    assert caught.value.message == "third"
    assert caught.value.__cause__ is None
    assert len(calls) == 3
    assert len(sleeps) == 2


async def test_a_wait_longer_than_the_cap_gives_up_at_once(sleeps: list[float]) -> None:
    attempt, calls = attempts(retryable("daily", min_wait_s=60), "never")
    with pytest.raises(ApiError) as caught:
        await call_with_retries(attempt, RetryPolicy(max_attempts=5, cap_s=30))
    assert caught.value.message == "daily"
    assert (len(calls), sleeps) == (1, [])


async def test_other_errors_are_not_retried(sleeps: list[float]) -> None:
    rejected = ApiError(ErrorKind.DUPLICATE, "exists")
    attempt, calls = attempts(rejected, "never")
    with pytest.raises(ApiError) as caught:
        await call_with_retries(attempt, RetryPolicy())
    assert caught.value is rejected
    assert len(calls) == 1
    attempt, calls = attempts(KeyError("bug"))
    with pytest.raises(KeyError):
        await call_with_retries(attempt, RetryPolicy())
    assert sleeps == []


async def test_single_attempt_policy(sleeps: list[float]) -> None:
    attempt, calls = attempts(retryable("once"), "never")
    with pytest.raises(ApiError, match="once"):
        await call_with_retries(attempt, RetryPolicy(max_attempts=1))
    assert (len(calls), sleeps) == (1, [])


def test_retryable_carries_its_error() -> None:
    error = ApiError(ErrorKind.RATE_LIMITED, "slow")
    exc = Retryable(error, 1.5)
    assert (exc.error, exc.min_wait_s, str(exc)) == (error, 1.5, "slow")
    assert Retryable(error).min_wait_s == 0.0
    assert RetryPolicy() == RetryPolicy(5, 0.5, 30.0)


def test_a_share_of_the_budget() -> None:
    """Each of a proxy's N workers paces itself to 1/N of the account's budget, also
    when the vendor's headers say what the budget is."""
    limiter = RollingWindowLimiter(100, 10.0, share=0.5)
    assert limiter._max == 50
    limiter.observe(190, None, 10.0)
    assert limiter._max == 95
    assert RollingWindowLimiter(1, 10.0, share=0.25)._max == 1  # never nothing


class FakeBudget:
    """A shared window as PostgreSQL keeps it (``take_vendor_slot``), in memory."""

    def __init__(self, fail: bool = False) -> None:
        self.slots: dict[int, float] = {}  # slot -> when its window starts
        self.fail = fail
        self.taken = 0
        self.asked: list[int] = []  # the window size each take asked for

    async def take(
        self, account: str, max_requests: int, interval_s: float
    ) -> tuple[int | None, float]:
        if self.fail:
            raise ConnectionError("journal database down")
        self.asked.append(max_requests)
        now = time.monotonic()
        self.slots = {k: v for k, v in self.slots.items() if v > now - interval_s}
        if len(self.slots) < max_requests:
            self.taken += 1
            self.slots[self.taken] = now + interval_s  # in flight
            return self.taken, 0.0
        return None, min(self.slots.values()) + interval_s - now

    async def answered(self, slot: int) -> None:
        self.slots[slot] = time.monotonic()


async def test_a_shared_window_waits_for_room_then_counts_from_the_answer() -> None:
    budget = FakeBudget()
    limiter = SharedWindowLimiter(budget, "portal", 2, 0.2)
    started = time.monotonic()
    for _ in range(3):
        async with limiter.slot():
            pass
    assert time.monotonic() - started >= 0.19  # the third waited a window
    assert budget.taken == 3


async def test_an_unreachable_shared_budget_sends_nothing_and_is_retry_safe() -> None:
    limiter = SharedWindowLimiter(FakeBudget(fail=True), "portal", 2, 1.0)
    with pytest.raises(ApiError) as refused:
        async with limiter.slot():
            raise AssertionError("sent")
    assert refused.value.kind is ErrorKind.UNAVAILABLE and refused.value.retry_safe


async def test_a_shared_window_keeps_its_share_when_the_vendor_announces_its_limit() -> None:
    """``rate_limit_share`` is the part of the account writeproxy may use at all (other
    integrations spend the rest): the vendor's headers announce the whole account's."""
    budget = FakeBudget()
    limiter = SharedWindowLimiter(budget, "portal", 100, 10.0, share=0.5)
    async with limiter.slot():
        pass
    limiter.observe(limit=190, remaining=150, interval_s=10.0)
    async with limiter.slot():
        pass
    assert budget.asked == [50, 95]


def test_a_shared_budget_is_attached_as_validated_and_not_divided(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``rate_limit_shared = "true"`` validates as true: the connector spends from the
    shared window (the account's whole budget, not 1/N per worker); without it each
    of N workers paces to 1/N."""
    from proxy.writepath import build_connectors
    from proxy.writes.settings import ConnectorSettings
    from proxy.writes.tables import SyncedTables

    monkeypatch.setenv("WP_TEST_TOKEN", "pat-1")

    def limiter(**options: object) -> object:
        conf = ConnectorSettings.model_validate(
            {"kind": "hubspot", "base_url": "https://hubspot.test", "token_env": "WP_TEST_TOKEN"}
            | options
        )
        [connector] = build_connectors(
            SyncedTables(connectors={"hubspot": conf}), workers=2, budget=FakeBudget()
        ).values()
        return connector._client._limiter  # type: ignore[attr-defined]

    shared = limiter(rate_limit_requests=100, rate_limit_shared="true")
    assert isinstance(shared, SharedWindowLimiter) and shared._max == 100
    local = limiter(rate_limit_requests=100)
    assert isinstance(local, RollingWindowLimiter) and local._max == 50
