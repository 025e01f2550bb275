"""``writeproxy serve``: the supervisor. Starts the embedded PostgreSQL when no
upstream is configured, runs one worker in-process or N worker processes sharing
the port with SO_REUSEPORT (restarting any that dies, after a delay that grows while
it keeps dying), and stops everything on SIGTERM/SIGINT after the workers have
drained."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import uvloop

from proxy import metrics
from proxy.config import Settings, parse_listen
from proxy.embedded import LocalPostgres
from proxy.guard import GuardSetupError, install_guard
from proxy.guard_key import GuardKey
from proxy.journal import JournalSetupError, ensure_schema
from proxy.logcontext import ContextFilter
from proxy.logformat import JsonFormatter, set_levels
from proxy.supervisor_backoff import RestartBackoff, describe_exit
from proxy.worker import bind_listener, run_worker
from proxy.writes.tables import ConfigError, SyncedTables, load_synced_tables

log = logging.getLogger(__name__)
SUPERVISE_INTERVAL = 0.5


#: The text format; ``context`` is the session's fields (``proxy.logcontext``).
TEXT_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s%(context)s"


def configure_logging(level: str, log_format: str = "text") -> None:
    logging.basicConfig(level=level)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(logging.Formatter(TEXT_FORMAT, defaults={"context": ""}))
    set_levels(level)


STARTUP_RETRY_CAP_S = 30.0
T = TypeVar("T")


def check_fd_limit(max_client_conn: int) -> int:
    """Raise the open-files limit as far as allowed for ``max_client_conn`` sessions
    (two sockets each, plus the proxy's own); warn when it stays too low (past it,
    new clients would get a bare connection reset). Returns the soft limit."""
    needed = 2 * max_client_conn + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft < needed:
        log.warning(
            "the open-files limit (%d) allows about %d clients, below max_client_conn=%d: "
            "raise it (systemd: LimitNOFILE=) or lower max_client_conn",
            soft,
            max(0, (soft - 256) // 2),
            max_client_conn,
        )
    return int(soft)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _StartupSignals:
    """Until the workers handle SIGTERM/SIGINT themselves, such a signal unwinds the
    startup (so an embedded PostgreSQL already started is stopped, not orphaned);
    inside ``critical()`` (initdb, pg_ctl) it takes effect once the tool is done."""

    def __init__(self) -> None:
        self._pending = False
        self._critical = 0

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        # A reload request (systemctl reload) before the workers can act on it must not
        # kill the proxy (SIGHUP's default); workers inherit the disposition until
        # their own handler reads the catalog again.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _on_signal(self, _signum: int, _frame: object) -> None:
        if self._pending:
            return  # already stopping
        self._pending = True
        if not self._critical:
            raise SystemExit(0)

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
        if self._pending and not self._critical:
            raise SystemExit(0)


_STARTUP_SIGNALS = _StartupSignals()


@contextlib.contextmanager
def embedded_postgres(settings: Settings) -> Iterator[str]:
    """Start the bundled PostgreSQL in the data directory; yield its URL."""
    server = LocalPostgres(settings.data_dir / "pgdata", port=settings.embedded_port or free_port())
    log.info("starting embedded PostgreSQL in %s", server.data_dir)
    try:
        with _STARTUP_SIGNALS.critical():
            if server.running():
                server.stop()
            server.start()
        yield server.url
    finally:
        log.info("stopping embedded PostgreSQL")
        server.stop()


def _worker_main(
    settings: Settings, index: int, runtime_dir: Path | None, tables: SyncedTables
) -> None:
    """Entry point of a worker process (and of the single in-process worker)."""
    configure_logging(settings.log_level, settings.log_format)
    admin_sock = None
    if settings.admin_listen is not None:  # bound first: it answers once clients can connect
        admin_host, admin_port = parse_listen(settings.admin_listen)
        admin_sock = bind_listener(admin_host, admin_port, reuse_port=settings.workers > 1)
    host, port = settings.listen_address
    sock = bind_listener(
        host, port, reuse_port=settings.workers > 1, backlog=settings.listen_backlog
    )
    uvloop.run(run_worker(settings, index, runtime_dir, sock, tables, admin_sock))


def load_tables(settings: Settings) -> SyncedTables:
    """Validate the synced-table configuration against the upstream catalog."""
    if not settings.connectors:
        return SyncedTables()
    assert settings.upstream_url is not None
    url = settings.upstream_url
    try:
        tables = _until_upstream_answers(
            settings,
            lambda: load_synced_tables(url, settings.connectors, settings.synced_tables),
        )
    except ConfigError as exc:
        raise SystemExit(f"writeproxy: invalid configuration: {exc}") from exc
    except asyncpg.PostgresError as exc:  # e.g. a wrong password: waiting will not help
        raise SystemExit(f"writeproxy: PostgreSQL refused the proxy's connection: {exc}") from exc
    if tables:
        try:
            tables.guard, tables.database = _until_upstream_answers(
                settings, lambda: _prepare_upstream(settings, tables)
            )
        except GuardSetupError as exc:
            raise SystemExit(f"writeproxy: cannot install the guard: {exc}") from exc
        except JournalSetupError as exc:
            raise SystemExit(f"writeproxy: cannot set up the write journal: {exc}") from exc
    return tables


#: Upstream failures that mean "not reachable yet" (not a wrong configuration).
_NOT_YET = (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)


def _until_upstream_answers(settings: Settings, attempt: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a startup step that needs PostgreSQL, again and again with capped
    exponential backoff while PostgreSQL cannot be reached (starting before the
    database, as a service manager may, is normal); SIGTERM ends the wait."""
    delay = 0.5
    upstream = settings.upstream
    while True:
        try:
            return asyncio.run(attempt())
        except _NOT_YET as exc:
            log.warning(
                "PostgreSQL at %s:%s is not reachable (%s); retrying in %.0fs",
                upstream.host,
                upstream.port,
                str(exc) or type(exc).__name__,
                delay,
            )
        time.sleep(delay)
        delay = min(delay * 2, STARTUP_RETRY_CAP_S)


async def _prepare_upstream(settings: Settings, tables: SyncedTables) -> tuple[GuardKey, str]:
    """Create or migrate the journal schema and install the guard on the synced tables,
    once, before any worker starts; returns the guard's key and the database."""
    assert settings.upstream_url is not None
    conn = await asyncpg.connect(settings.upstream_url)
    try:
        await ensure_schema(conn, settings.journal_schema)
        key = await install_guard(
            conn, settings.journal_schema, tables.tables.values(), settings.sync_roles
        )
        return key, str(await conn.fetchval("SELECT pg_catalog.current_database()"))
    finally:
        await conn.close()


def _check_port_free(host: str, port: int) -> None:
    """SO_REUSEPORT would silently share the port with another proxy: refuse that."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the listener itself: connections of a previous run in TIME_WAIT do not
        # block a restart, a socket listening on the port (another proxy) still does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def _supervise(settings: Settings, runtime_dir: Path, tables: SyncedTables) -> None:
    ctx = multiprocessing.get_context("spawn")
    stopping = False
    backoff = RestartBackoff()
    restart_at: dict[int, float] = {}  # slot -> when its dead worker is replaced

    def start(index: int) -> multiprocessing.process.BaseProcess:
        process = ctx.Process(target=_worker_main, args=(settings, index, runtime_dir, tables))
        # The child starts with SIGHUP ignored (a handler would reset to "terminate"
        # at exec) until its event loop handles it.
        reload_handler = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            process.start()
        finally:
            signal.signal(signal.SIGHUP, reload_handler)
        backoff.started(index, time.monotonic())
        return process

    workers: list[multiprocessing.process.BaseProcess] = []

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in workers:
            if process.is_alive():
                process.terminate()

    def on_reload(_signum: int, _frame: object) -> None:
        log.info("SIGHUP: asking the workers to read the catalog again")
        for process in workers:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGHUP)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    signal.signal(signal.SIGHUP, on_reload)
    for index in range(settings.workers):
        workers.append(start(index))
    while not stopping:
        wake = min([time.monotonic() + SUPERVISE_INTERVAL, *restart_at.values()])
        time.sleep(max(0.0, wake - time.monotonic()))
        for index, process in enumerate(workers):
            if stopping or process.is_alive():
                continue
            now = time.monotonic()
            if index not in restart_at:
                if process.pid is not None:
                    metrics.worker_gone(process.pid)
                delay = backoff.exited(index, now)
                restart_at[index] = now + delay
                log.error(
                    "worker %d exited with %s; restarting it in %.1fs",
                    index,
                    describe_exit(process.exitcode),
                    delay,
                )
            elif now >= restart_at[index]:
                del restart_at[index]
                workers[index] = start(index)
    for process in workers:
        if process.is_alive():
            process.terminate()  # again: it may have started after the signal
        process.join(settings.shutdown_timeout + 5)
        if process.is_alive():
            process.kill()


def serve(settings: Settings) -> None:
    """Run the proxy until told to stop."""
    configure_logging(settings.log_level, settings.log_format)
    check_fd_limit(settings.max_client_conn)
    host, port = settings.listen_address
    _check_port_free(host, port)
    _STARTUP_SIGNALS.install()
    with contextlib.ExitStack() as stack:
        if settings.admin_listen is not None:
            # Before any worker starts and before prometheus-client is first imported.
            metrics_dir = tempfile.mkdtemp(prefix="writeproxy-metrics-")
            stack.callback(shutil.rmtree, metrics_dir, ignore_errors=True)
            os.environ[metrics.MULTIPROC_ENV] = metrics_dir
        if settings.upstream_url is None:
            url = stack.enter_context(embedded_postgres(settings))
            settings = settings.model_copy(update={"upstream_url": url})
        upstream = settings.upstream
        tables = load_tables(settings)
        url_host = f"[{host}]" if ":" in host else host  # IPv6 needs brackets in a URL
        client_url = (
            f"postgresql://{upstream.user or 'postgres'}@{url_host}:{port}/"
            f"{upstream.database or 'postgres'}"
        )
        print(
            f"writeproxy listening on {host}:{port} -> upstream {upstream.host}:{upstream.port}\n"
            f"connect with: psql {client_url}",
            flush=True,
        )
        if settings.workers == 1:
            _worker_main(settings, 0, None, tables)
            return
        runtime_dir = Path(tempfile.mkdtemp(prefix="writeproxy-"))
        stack.callback(shutil.rmtree, runtime_dir, ignore_errors=True)
        _supervise(settings, runtime_dir, tables)
