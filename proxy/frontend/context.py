"""What every session of one worker shares, and the narrow view the worker has of a
session. Sessions receive this context; they never import the worker (no cycle)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from proxy.backend.address import UpstreamAddress
from proxy.cancel import CancelRegistry
from proxy.config import Settings

if TYPE_CHECKING:
    from proxy.writes.router import WriteRouter

log = logging.getLogger(__name__)
T = TypeVar("T")


class SessionControl(Protocol):
    """What the worker may do with a session: ask, close, cancel."""

    @property
    def idle(self) -> bool: ...

    def terminate(self) -> None: ...

    async def cancel_upstream(self) -> None: ...


@dataclass
class WorkerContext:
    settings: Settings
    upstream: UpstreamAddress
    cancels: CancelRegistry
    router: WriteRouter | None = None
    #: The context clients' TLS sessions use (None: SSLRequest is answered N), and
    #: whether sessions that did not upgrade are refused (tls_mode = require).
    tls: ssl.SSLContext | None = None
    tls_required: bool = False
    #: This worker's share of max_client_conn.
    max_sessions: int = 5_000
    sessions: set[SessionControl] = field(default_factory=set)
    #: Called when a session's transaction that ran catalog DDL has ended.
    catalog_changed: Callable[[], None] = lambda: None
    draining: bool = False
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(
        self, coro: Coroutine[Any, Any, T], context: contextvars.Context | None = None
    ) -> asyncio.Task[T]:
        """Run ``coro`` in the background (in ``context``: a session's, so its log lines
        name the session), keeping a reference and logging failures."""
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    async def wait_tasks(self, timeout: float) -> None:
        """Let background tasks (compensations, cancels) finish, for at most ``timeout``."""
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())
