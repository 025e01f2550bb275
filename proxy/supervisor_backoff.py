"""When the supervisor may restart a dead worker process.

A worker that dies at once on every start (a bad configuration, an upstream it
cannot reach during start-up, a crash on the first connection) must not be
respawned every half second forever: each restart of the same worker slot waits
twice as long as the one before, up to a cap, and a worker that stayed up long
enough counts as healthy again, so its next crash is restarted quickly.

Pure policy, no processes and no clock of its own (the caller passes ``now``), so
that it is tested without sleeping; ``proxy.server`` applies it.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

INITIAL_DELAY = 0.5
MAX_DELAY = 30.0
STABLE_AFTER = 60.0


@dataclass
class RestartBackoff:
    """Exponential restart delay per worker slot (``initial`` doubling up to ``cap``),
    forgotten once a worker of that slot has been up for ``stable_after`` seconds."""

    initial: float = INITIAL_DELAY
    cap: float = MAX_DELAY
    stable_after: float = STABLE_AFTER
    factor: float = 2.0
    _started: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    _failures: dict[int, int] = field(default_factory=dict, init=False, repr=False)

    def started(self, slot: int, now: float) -> None:
        """A worker for ``slot`` was started at ``now``."""
        self._started[slot] = now

    def exited(self, slot: int, now: float) -> float:
        """The worker of ``slot`` was found dead at ``now``: seconds to wait before
        starting its successor."""
        started = self._started.pop(slot, None)
        if started is not None and now - started >= self.stable_after:
            self._failures[slot] = 0
        delay = min(self.cap, self.initial * self.factor ** self._failures.get(slot, 0))
        if delay < self.cap:  # past the cap the count stops growing (no float overflow)
            self._failures[slot] = self._failures.get(slot, 0) + 1
        return delay


def describe_exit(exitcode: int | None) -> str:
    """A process's exit as a log phrase: ``exit code 3`` or ``signal SIGKILL``
    (multiprocessing reports death by signal N as exit code -N)."""
    if exitcode is None:
        return "no exit code"
    if exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        return f"signal {signal.Signals(-exitcode).name}"
    except ValueError:
        return f"signal {-exitcode}"
