"""The one retry layer: capped exponential backoff with full jitter (tenacity).

A send attempt raises `Retryable` when trying again is safe and useful; the wait is
the jittered backoff, but never less than what the vendor asked for (Retry-After, a
policy's window). If the vendor asks for more than `cap_s`, we give up at once rather
than hold a SQL statement hostage.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from .base import ApiError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0


class Retryable(Exception):
    """`error` is raised if attempts run out; `min_wait_s` is the vendor's requested pause."""

    def __init__(self, error: ApiError, min_wait_s: float = 0.0) -> None:
        super().__init__(error.message)
        self.error = error
        self.min_wait_s = min_wait_s


def _failure(state: RetryCallState) -> Retryable:
    assert state.outcome is not None
    exc = state.outcome.exception()
    assert isinstance(exc, Retryable)
    return exc


async def call_with_retries(attempt: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    def wait(state: RetryCallState) -> float:
        backoff = min(policy.cap_s, policy.base_s * 2 ** (state.attempt_number - 1))
        return max(random.uniform(0, backoff), _failure(state).min_wait_s)

    def stop(state: RetryCallState) -> bool:
        too_long = _failure(state).min_wait_s > policy.cap_s
        return too_long or stop_after_attempt(policy.max_attempts)(state)

    retrying = AsyncRetrying(
        stop=stop, wait=wait, retry=retry_if_exception_type(Retryable), reraise=True
    )
    try:
        async for try_ in retrying:
            with try_:
                return await attempt()
    except Retryable as exc:
        raise exc.error from None
    raise AssertionError("unreachable: tenacity either returns or raises")
