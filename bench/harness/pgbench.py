"""pgbench as the load generator: filling its tables, warming targets up, and one
timed run whose TPS comes from pgbench's summary and whose latencies come from
its per-transaction logs.

The workload is whatever pgbench options a scenario passes (``-S`` for the
built-in select-only script, ``-f file`` for a custom one); the harness adds the
protocol mode, clients, threads, duration and connection.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.harness import log
from bench.harness.clients import client_env, conn_args
from bench.harness.processes import Target
from bench.harness.stats import Run

PROTOCOL_MODES = ("simple", "extended", "prepared")  # pgbench -M
TPS_RE = re.compile(r"^tps = ([0-9.]+) \((?:without|excluding)", re.MULTILINE)


def init_pgbench(pgbench: str, port: int, scale: int) -> None:
    """Create and fill the pgbench tables (``pgbench -i -s scale``)."""
    log(f"pgbench -i -s {scale}")
    subprocess.run(
        [pgbench, "-i", "-s", str(scale), "-q", *conn_args(port)],
        check=True,
        capture_output=True,
        env=client_env(),
    )


def pgbench_version(pgbench: str) -> str:
    """``pgbench --version`` (empty when it fails)."""
    result = subprocess.run([pgbench, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip()


def pgbench_argv(
    pgbench: str,
    workload: Sequence[str],
    port: int,
    mode: str,
    clients: int,
    duration: int,
    log_prefix: Path | None,
) -> list[str]:
    """pgbench with ``workload`` options for one cell; per-transaction logging when
    ``log_prefix`` is set."""
    threads = 1 if clients == 1 else min(2, clients)
    argv = [
        pgbench,
        *workload,
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
    pgbench: str, workload: Sequence[str], duration: int, target: Target, run: Run, log_dir: Path
) -> None:
    """Run ``run``'s cell against ``target`` for ``duration`` seconds and record TPS
    and latency percentiles in ``run`` (or what went wrong); ``log_dir`` exists."""
    argv = pgbench_argv(
        pgbench, workload, target.port, run.mode, run.clients, duration, log_dir / "tx"
    )
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
        return
    run.tps = float(match.group(1))
    run.add_latencies(read_latencies(log_dir))
    shutil.rmtree(log_dir, ignore_errors=True)


def warm_up(
    pgbench: str, workload: Sequence[str], targets: list[Target], seconds: int, mode: str
) -> None:
    """A short untimed run of ``workload`` with 8 clients per target that started,
    to warm caches and pools."""
    if seconds <= 0:
        return
    for target in targets:
        if target.error is not None:
            continue
        log(f"warm-up {target.name} ({seconds}s)")
        subprocess.run(
            pgbench_argv(pgbench, workload, target.port, mode, 8, seconds, None),
            capture_output=True,
            env=client_env(),
            timeout=seconds * 3 + 60,
            check=False,
        )
