"""The servers a benchmark measures, started fresh and always stopped again.

A throwaway PostgreSQL cluster, PgBouncer in session mode, the bare byte
forwarder (``bench.harness.forwarder``, the ceiling of a Python relay) and
writeproxy with a given worker count, each on a free loopback port and each
checked with ``select 1`` before it counts as ready. Every process is started in
its own session and its whole process group is stopped on the way out (the
proxy's forked workers included), whatever ends the run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import REPO_ROOT, log
from bench.harness.clients import DATABASE, HOST, USER, select_one
from bench.harness.install import ensure_pgbouncer
from proxy.embedded import LocalPostgres

# The targets a scenario can choose from; "proxyN" is writeproxy with N workers.
PROXY_WORKERS = {"proxy1": 1, "proxy2": 2}
ALL_TARGETS = ("direct", "pgbouncer", "forwarder", *PROXY_WORKERS)
PG_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    "synchronous_commit": "off",
}
READY_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether ``HOST:port`` accepts a TCP connection."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def unprivileged_user() -> str | None:
    """The user to run servers as: None unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "writeproxy", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root but no unprivileged user (postgres, nobody) exists")


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (empty when missing)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Target:
    """One endpoint the workload can be pointed at (``error`` when it did not start)."""

    name: str
    port: int
    pids: list[int] = field(default_factory=list)
    error: str | None = None


class Processes:
    """Long-running child processes, stopped (process group and all) on close."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        user: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in its own session, output to ``log_path``."""
        with log_path.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                user=user,
                env=env,
                start_new_session=True,
            )
        self._procs.append((name, proc))
        return proc

    def close(self) -> None:
        """SIGTERM every process group we started, SIGKILL what survives 10 s."""
        for _, proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        for name, proc in reversed(self._procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} (pid {proc.pid}) ignored SIGTERM, killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # Workers a proxy forked stay in its process group: reap stragglers.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._procs.clear()


def wait_ready(
    port: int, proc: subprocess.Popen[bytes], psql: str, log_path: Path, name: str
) -> None:
    """Wait until ``port`` accepts TCP and ``select 1`` through it succeeds."""
    deadline = time.monotonic() + READY_TIMEOUT
    last_error = "port never opened"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode}:\n{tail(log_path)}")
        if port_open(port):
            last_error = select_one(psql, port, max(1.0, deadline - time.monotonic()))
            if not last_error:
                return
        time.sleep(0.2)
    raise RuntimeError(
        f"{name} not ready on port {port} after {READY_TIMEOUT:.0f}s ({last_error}):\n"
        f"{tail(log_path)}"
    )


@dataclass
class Cluster:
    """The throwaway PostgreSQL every target leads to, and what runs in front of it."""

    work: Path
    pg: LocalPostgres
    procs: Processes
    psql: str


@contextlib.contextmanager
def cluster(
    work: Path, bin_dir: Path, psql: str, settings: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """Start a PostgreSQL cluster tuned for benchmarks in ``work``; on the way out
    stop every process started through it, then the cluster."""
    procs = Processes()
    pg: LocalPostgres | None = None
    try:
        pg = LocalPostgres(
            work / "pgdata", free_port(), bin_dir=bin_dir, settings=settings or PG_SETTINGS
        )
        log(f"starting PostgreSQL from {bin_dir} on port {pg.port}")
        pg.start()
        yield Cluster(work, pg, procs, psql)
    finally:
        procs.close()
        if pg is not None:
            try:
                pg.stop()
            except subprocess.CalledProcessError:
                pg.stop("immediate")


def start_pgbouncer(cl: Cluster) -> Target:
    """Run PgBouncer in session mode from a temporary config."""
    binary = ensure_pgbouncer()
    port = free_port()
    userlist = cl.work / "userlist.txt"
    userlist.write_text(f'"{USER}" ""\n')
    config = cl.work / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"{DATABASE} = host={HOST} port={cl.pg.port} dbname={DATABASE} user={USER}\n"
        "[pgbouncer]\n"
        f"listen_addr = {HOST}\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {userlist}\n"
        "pool_mode = session\n"
        "max_client_conn = 200\n"
        "default_pool_size = 50\n"
        "ignore_startup_parameters = extra_float_digits\n"
        "log_connections = 0\n"
        "log_disconnections = 0\n"
    )
    for path in (userlist, config):
        path.chmod(0o644)
    log_path = cl.work / "pgbouncer.log"
    log(f"starting PgBouncer ({binary}) on port {port}")
    proc = cl.procs.spawn("pgbouncer", [binary, str(config)], log_path, user=unprivileged_user())
    wait_ready(port, proc, cl.psql, log_path, "pgbouncer")
    return Target("pgbouncer", port, [proc.pid])


def start_forwarder(cl: Cluster, python: str) -> Target:
    """Run the bare uvloop byte forwarder in front of the cluster."""
    port = free_port()
    log_path = cl.work / "forwarder.log"
    log(f"starting the byte forwarder on port {port}")
    argv = [
        python,
        "-m",
        "bench.harness.forwarder",
        "--listen",
        f"{HOST}:{port}",
        "--upstream",
        f"{HOST}:{cl.pg.port}",
    ]
    proc = cl.procs.spawn("forwarder", argv, log_path)
    wait_ready(port, proc, cl.psql, log_path, "forwarder")
    return Target("forwarder", port, [proc.pid])


@dataclass(frozen=True)
class ProxyOptions:
    """How writeproxy targets are run: the interpreter (the forwarder's too), extra
    ``serve`` options (a scenario with synced tables adds its configuration) and
    environment."""

    python: str
    extra_args: Sequence[str] = ()
    env: dict[str, str] | None = None


def proxy_argv(python: str, port: int, upstream: str, workers: int) -> list[str]:
    """The command line that serves writeproxy on ``port``."""
    return [
        python,
        "-m",
        "proxy",
        "serve",
        "--listen",
        f"{HOST}:{port}",
        "--upstream",
        upstream,
        "--workers",
        str(workers),
    ]


def start_proxy(cl: Cluster, name: str, options: ProxyOptions) -> Target:
    """Run writeproxy with the worker count ``name`` calls for."""
    workers = PROXY_WORKERS[name]
    port = free_port()
    log_path = cl.work / f"{name}.log"
    log(f"starting writeproxy ({workers} worker(s)) on port {port}")
    argv = [*proxy_argv(options.python, port, cl.pg.url, workers), *options.extra_args]
    proc = cl.procs.spawn(name, argv, log_path, env=options.env)
    wait_ready(port, proc, cl.psql, log_path, name)
    return Target(name, port, [proc.pid, *child_pids(proc.pid)])


def child_pids(pid: int) -> list[int]:
    """Children of ``pid`` that are proxy workers (not multiprocessing helpers)."""
    pids = []
    with contextlib.suppress(OSError):
        for part in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{part}/cmdline").read_bytes()
                if b"resource_tracker" not in cmdline:
                    pids.append(int(part))
    return pids


def start_target(cl: Cluster, name: str, proxy: ProxyOptions) -> Target:
    """Start what target ``name`` needs; a target that fails to start is marked failed."""
    try:
        if name == "direct":
            return Target("direct", cl.pg.port)
        if name == "pgbouncer":
            return start_pgbouncer(cl)
        if name == "forwarder":
            return start_forwarder(cl, proxy.python)
        return start_proxy(cl, name, proxy)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        log(f"{name} did not start, its runs are skipped: {exc}")
        return Target(name, 0, error=f"did not start: {str(exc).splitlines()[0]}")


def start_targets(cl: Cluster, names: Sequence[str], proxy: ProxyOptions) -> list[Target]:
    """Start every target in ``names`` (in order) and log where each one runs."""
    targets = [start_target(cl, name, proxy) for name in names]
    for target in targets:
        if len(target.pids) > 1:
            main_pid, workers = target.pids[0], target.pids[1:]
            log(f"{target.name}: port {target.port}, pid {main_pid}, worker pids {workers}")
        elif target.pids:
            log(f"{target.name}: port {target.port}, pid {target.pids[0]}")
    return targets
