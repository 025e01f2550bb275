"""The background recovery loop: ``Resolver.resolve_due`` at startup and then
periodically, plus the journal's retention.

Apart from ``resolver`` because it is lifecycle (a task to start and stop, timers),
not resolution; it only drives a ``Resolver``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from proxy import metrics

from .resolver import Report, Resolver

log = logging.getLogger(__name__)


class RecoveryLoop:
    """Resolve due entries at startup (``start`` returns after the first pass, so a
    worker can recover before it listens), then every ``interval_s``; delete
    terminal entries older than ``retention`` at startup and every ``purge_every_s``."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        interval_s: float = 5.0,
        retention: timedelta | None = timedelta(days=7),
        purge_every_s: float = 3600.0,
        unowned_after_s: float = 300.0,
        upkeep: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._resolver = resolver
        #: Other periodic checks of the proxy's objects in the database (the guard).
        self._upkeep = upkeep
        self._interval_s = interval_s
        self._retention = retention
        self._purge_every_s = purge_every_s
        self._purged_at: float | None = None
        #: How long an entry of a connector this proxy lacks may sit untouched before
        #: it is reported (checked at most that often).
        self._unowned_after_s = unowned_after_s
        self._unowned_checked_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Report:
        """The first pass (its errors propagate), then the loop in the background."""
        report = await self.run_once()
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return report

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> Report:
        if self._upkeep is not None:
            try:
                await self._upkeep()
            except Exception as exc:  # the next pass tries again
                log.warning("upkeep of the proxy's database objects failed: %s", exc)
        report = await self._resolver.resolve_due()
        if report.outcomes:
            log.info("journal recovery: %s", report)
        await self._purge()
        await self._report_unowned()
        if metrics.enabled():
            try:
                metrics.journal_backlog(await self._resolver.journal.backlog())
            except Exception as exc:  # the next pass tries again
                log.debug("journal backlog not counted: %s", exc)
        return report

    async def _purge(self) -> None:
        now = time.monotonic()
        if self._retention is None:
            return
        if self._purged_at is not None and now - self._purged_at < self._purge_every_s:
            return
        self._purged_at = now
        purged = await self._resolver.journal.purge(self._retention)
        if purged:
            log.info("journal retention: deleted %d settled entries", purged)

    async def _report_unowned(self) -> None:
        """Warn about open entries no configured connector of this proxy can resolve
        and nobody else has touched for a while: a connector removed from the
        configuration (or a proxy that has it not running) leaves them undone."""
        now = time.monotonic()
        checked = self._unowned_checked_at
        if checked is not None and now - checked < self._unowned_after_s:
            return
        self._unowned_checked_at = now
        resolver = self._resolver
        unowned = await resolver.journal.unowned(resolver.connector_names, self._unowned_after_s)
        for connector, count in unowned.items():
            log.warning(
                "journal: %d open entries of connector %r, which this proxy does not have, "
                "untouched for over %.0fs; configure it (or run a proxy that has it) to "
                "resolve them",
                count,
                connector,
                self._unowned_after_s,
            )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.run_once()
            except Exception as exc:
                log.warning(
                    "journal recovery pass failed (%s); next in %.0fs", exc, self._interval_s
                )


__all__ = ["RecoveryLoop"]
