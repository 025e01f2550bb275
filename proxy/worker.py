"""One worker process: a listener on the shared port, its sessions, and a graceful
shutdown that lets in-flight transactions finish for a bounded time."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from proxy.backend.address import UpstreamAddress
from proxy.cancel import CancelRegistry
from proxy.config import Settings
from proxy.connectors import build_connector
from proxy.frontend.session import ClientSession
from proxy.writes.executor import WriteExecutor
from proxy.writes.router import WriteRouter
from proxy.writes.tables import SyncedTables

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class WorkerContext:
    """What every session of this worker shares."""

    settings: Settings
    upstream: UpstreamAddress
    cancels: CancelRegistry
    router: WriteRouter | None = None
    sessions: set[ClientSession] = field(default_factory=set)
    draining: bool = False
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` in the background, keeping a reference and logging failures."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())


def bind_listener(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A listening socket; with ``reuse_port`` every worker binds the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def build_router(tables: SyncedTables) -> WriteRouter | None:
    """The synced-write machinery, or None when nothing is synced (pure relay)."""
    if not tables:
        return None
    connectors = {
        name: build_connector(
            conf.kind, token=os.environ[conf.token_env], **conf.connector_options()
        )
        for name, conf in tables.connectors.items()
    }
    return WriteRouter(tables, WriteExecutor(connectors))


async def run_worker(
    settings: Settings,
    worker_index: int,
    runtime_dir: Path | None,
    sock: socket.socket,
    tables: SyncedTables,
) -> None:
    """Serve clients on ``sock`` until SIGTERM/SIGINT, then drain."""
    loop = asyncio.get_running_loop()
    ctx = WorkerContext(
        settings,
        settings.upstream,
        CancelRegistry(worker_index, runtime_dir),
        build_router(tables),
    )
    server = await loop.create_server(lambda: ClientSession(ctx), sock=sock)
    await ctx.cancels.serve_peers()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("worker %d shutting down: %d sessions open", worker_index, len(ctx.sessions))
    server.close()
    ctx.cancels.close()
    await drain(ctx, settings.shutdown_timeout)


async def drain(ctx: WorkerContext, timeout: float) -> None:
    """Close idle sessions now, busy ones when their transaction ends or at timeout."""
    ctx.draining = True
    for session in list(ctx.sessions):
        if session.idle:
            session.terminate()
    deadline = asyncio.get_running_loop().time() + timeout
    while ctx.sessions and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    remaining = list(ctx.sessions)
    for session in remaining:
        session.terminate()
    if remaining:
        # A closed socket does not stop a running query (PostgreSQL notices only when
        # it next writes), so cancel them: otherwise the backends and their locks stay.
        cancels = [asyncio.ensure_future(session.cancel_upstream()) for session in remaining]
        await asyncio.wait(cancels, timeout=ctx.settings.connect_timeout)
    await asyncio.sleep(0)
