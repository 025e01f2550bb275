"""One worker process: a listener on the shared port, its sessions, and a graceful
shutdown that lets in-flight transactions finish for a bounded time."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

from proxy.admin import AdminServer
from proxy.backend.upstream import send_cancel
from proxy.cancel import CancelRegistry
from proxy.config import Settings
from proxy.frontend.context import WorkerContext
from proxy.frontend.session import ClientSession
from proxy.reload import apply_log_level, read_again
from proxy.writepath import WritePath
from proxy.writes.tables import SyncedTables

log = logging.getLogger(__name__)


def bind_listener(host: str, port: int, reuse_port: bool, backlog: int = 4096) -> socket.socket:
    """A listening socket; with ``reuse_port`` every worker binds the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


async def run_worker(
    settings: Settings,
    worker_index: int,
    runtime_dir: Path | None,
    sock: socket.socket,
    tables: SyncedTables,
    admin_sock: socket.socket | None = None,
) -> None:
    """The worker's lifespan (as uvicorn's server): startup, serve until SIGTERM or
    SIGINT, then a shutdown that drains sessions, awaits background tasks and closes
    the connectors."""
    loop = asyncio.get_running_loop()
    ctx = WorkerContext(
        settings,
        settings.upstream,
        CancelRegistry(
            worker_index,
            runtime_dir,
            lambda packet: send_cancel(settings.upstream, packet, settings.connect_timeout),
            settings.workers,
        ),
        tls=settings.client_tls_context(),
        tls_required=settings.effective_tls_mode == "require",
        max_sessions=-(-settings.max_client_conn // settings.workers),
    )
    write_path = WritePath(settings, tables, ctx.spawn) if tables else None
    admin = AdminServer(settings.upstream, lambda: ready) if admin_sock is not None else None
    ready = False
    # A reload asked for while this worker starts is done once it can be.
    reload_asked = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, reload_asked.set)
    try:
        if admin is not None and admin_sock is not None:
            await admin.start(admin_sock)
        if write_path is not None:
            await write_path.start()
            ctx.router = write_path.router
        server = await loop.create_server(lambda: ClientSession(ctx), sock=sock)
        ready = True
        await ctx.cancels.serve_peers()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        reloading = asyncio.Lock()

        def reload() -> None:
            reload_asked.clear()
            ctx.spawn(reload_configuration(ctx, write_path, reloading))

        loop.add_signal_handler(signal.SIGHUP, reload)
        if settings.workers > 1:
            # Every worker must read it again: the supervisor forwards SIGHUP to all
            # (which also reads the configuration file again, as SIGHUP does).
            ctx.catalog_changed = lambda: os.kill(os.getppid(), signal.SIGHUP)
        else:

            def catalog_changed() -> None:
                ctx.spawn(reload_catalog(write_path, reloading))

            ctx.catalog_changed = catalog_changed
        if reload_asked.is_set():
            reload()
        log.info("worker %d ready", worker_index)
        await stop.wait()
        log.info("worker %d shutting down: %d sessions open", worker_index, len(ctx.sessions))
        ready = False
        server.close()
        if admin is not None:
            admin.close()
        ctx.cancels.close()
        await drain(ctx, settings.shutdown_timeout)
    finally:
        # Background work (live journal resolutions, cancels) gets a bounded time;
        # whatever is left open, the next recovery pass resolves.
        await ctx.wait_tasks(settings.connect_timeout)
        if write_path is not None:
            await write_path.stop()


async def reload_configuration(
    ctx: WorkerContext, write_path: WritePath | None, lock: asyncio.Lock
) -> None:
    """SIGHUP: read the configuration file again (``proxy.reload``) and the catalog,
    keeping every session. The write path takes the new synced tables and connectors
    first: if that fails, nothing of the new configuration is applied."""
    async with lock:
        reloaded = read_again(ctx.settings)
        if reloaded is None:
            await _reload_catalog(write_path, None)
            return
        if write_path is None:
            if {"connectors", "synced_tables"} & reloaded.changed:
                log.warning("SIGHUP: no synced tables at startup; restart to sync new ones")
        elif not await _reload_catalog(write_path, reloaded.settings):
            return
        settings = reloaded.settings
        ctx.settings = settings
        ctx.tls = reloaded.tls
        ctx.tls_required = settings.effective_tls_mode == "require"
        ctx.max_sessions = -(-settings.max_client_conn // settings.workers)
        apply_log_level(settings.log_level)
        log.info(
            "SIGHUP: configuration read again (changed: %s)%s",
            ", ".join(sorted(reloaded.changed)) or "nothing",
            "; TLS certificate loaded again" if reloaded.tls is not None else "",
        )


async def reload_catalog(write_path: WritePath | None, lock: asyncio.Lock) -> None:
    """DDL through the proxy: read the catalog again (new synced tables, views,
    rules) with the running configuration."""
    async with lock:
        await _reload_catalog(write_path, None)


async def _reload_catalog(write_path: WritePath | None, settings: Settings | None) -> bool:
    """On failure the previous catalog stays and the reason is logged (False)."""
    if write_path is None:
        return True
    try:
        tables = await write_path.reload(settings)
    except Exception as exc:
        log.error("reading the catalog again failed, the previous one stays: %s", exc)
        return False
    log.info(
        "catalog read again: %d synced tables, %d dependent relations",
        len(tables.tables),
        len(tables.dependents),
    )
    return True


async def drain(ctx: WorkerContext, timeout: float) -> None:
    """Close idle sessions now, busy ones when their transaction ends or at timeout."""
    ctx.draining = True
    for session in list(ctx.sessions):
        if session.idle:
            session.terminate()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while ctx.sessions and loop.time() < deadline:
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
