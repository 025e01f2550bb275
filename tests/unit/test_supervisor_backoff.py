"""The supervisor's restart policy: how long a dead worker's slot waits before its
successor starts (exponential per slot, capped, reset after a healthy run)."""

from __future__ import annotations

import signal

import pytest

from proxy.supervisor_backoff import RestartBackoff, describe_exit


def crash_loop(backoff: RestartBackoff, slot: int, times: int, start: float = 0.0) -> list[float]:
    """``times`` workers of ``slot`` that each die right after starting: the delays."""
    delays = []
    now = start
    for _ in range(times):
        backoff.started(slot, now)
        delay = backoff.exited(slot, now + 0.1)
        delays.append(delay)
        now += 0.1 + delay
    return delays


def test_delay_doubles_from_half_a_second_up_to_the_cap() -> None:
    delays = crash_loop(RestartBackoff(), 0, 10)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_stays_at_the_cap_however_often_it_crashes() -> None:
    assert set(crash_loop(RestartBackoff(), 0, 5000)[7:]) == {30.0}


def test_slots_back_off_independently() -> None:
    backoff = RestartBackoff()
    crash_loop(backoff, 0, 4)
    assert crash_loop(backoff, 1, 2) == [0.5, 1.0]
    assert crash_loop(backoff, 0, 1) == [8.0]


def test_a_worker_that_stayed_up_resets_its_slot() -> None:
    backoff = RestartBackoff()
    crash_loop(backoff, 0, 5)
    backoff.started(0, 1000.0)
    assert backoff.exited(0, 1000.0 + 60.0) == 0.5
    assert crash_loop(backoff, 0, 2, start=2000.0) == [1.0, 2.0]


def test_a_worker_up_not_quite_long_enough_keeps_backing_off() -> None:
    backoff = RestartBackoff()
    crash_loop(backoff, 0, 3)
    backoff.started(0, 1000.0)
    assert backoff.exited(0, 1000.0 + 59.9) == 4.0


def test_exit_without_a_recorded_start_still_backs_off() -> None:
    backoff = RestartBackoff()
    assert [backoff.exited(3, 0.0), backoff.exited(3, 0.0)] == [0.5, 1.0]


def test_custom_parameters() -> None:
    backoff = RestartBackoff(initial=1.0, cap=5.0, stable_after=10.0, factor=3.0)
    assert crash_loop(backoff, 0, 4) == [1.0, 3.0, 5.0, 5.0]
    backoff.started(0, 500.0)
    assert backoff.exited(0, 510.0) == 1.0


@pytest.mark.parametrize(
    ("exitcode", "text"),
    [
        (0, "exit code 0"),
        (3, "exit code 3"),
        (-signal.SIGKILL, "signal SIGKILL"),
        (-signal.SIGSEGV, "signal SIGSEGV"),
        (-200, "signal 200"),
        (None, "no exit code"),
    ],
)
def test_describe_exit(exitcode: int | None, text: str) -> None:
    assert describe_exit(exitcode) == text
