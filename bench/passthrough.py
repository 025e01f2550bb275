"""Pass-through benchmark: ``pgbench -S`` against PostgreSQL, PgBouncer and writeproxy.

One run starts a throwaway PostgreSQL cluster, a PgBouncer in session mode, a bare
uvloop byte forwarder (the ceiling of a Python relay) and writeproxy with 1 and 2
workers, all on loopback, then for every (protocol mode,
clients) cell runs the select-only pgbench workload against each target back to
back (interleaved, so drift hits all targets alike), optionally for several rounds
(the median is reported). It prints TPS per target with the proxy/direct,
proxy/PgBouncer and proxy/forwarder ratios, and at 1 client the p50/p99 latency per target (from
pgbench's per-transaction logs) plus the latency each proxy adds over direct.

    .venv/bin/python bench/passthrough.py                       # all five targets
    .venv/bin/python bench/passthrough.py --duration 5 --rounds 3 --json out.json
    .venv/bin/python bench/passthrough.py --targets direct,pgbouncer --markdown

Stdlib only, plus ``proxy.embedded.LocalPostgres`` for the cluster (and uvloop
for the forwarder). As root the
script installs PgBouncer with apt-get when it is missing and runs it (and
PostgreSQL) as an unprivileged user. Every process it starts is stopped on exit,
Ctrl-C included.

This module is only the scenario (the workload, its options and its report
heading); starting servers, the measurement loop, statistics and tables are in
``bench/harness``.
"""

# ruff: noqa: E402  (the imports below need the repository root on sys.path first)
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.harness import cli
from bench.harness.clients import client_tool, server_version
from bench.harness.pgbench import init_pgbench, pgbench_version, run_pgbench, warm_up
from bench.harness.processes import (
    ProxyOptions,
    Target,
    cluster,
    start_targets,
)
from bench.harness.runner import machine, publish, run_matrix, started_at
from bench.harness.stats import Run
from proxy.embedded import wheel_bin_dir

WORKLOAD = ("-S",)  # pgbench's built-in select-only script
WARMUP_MODE = "prepared"


def scenario_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags only this scenario has."""
    parser.add_argument("--scale", type=int, default=10, help="pgbench -i scale (default 10)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: the harness's shared flags plus ``--scale``."""
    return cli.parse_args(__doc__.split("\n\n")[0], argv, scenario_arguments)


def intro(meta: dict[str, object]) -> str:
    """The first line of the report: what was run, on what."""
    return (
        f"pgbench -S, {meta['duration']}s per run, median of {meta['rounds']} round(s), "
        f"scale {meta['scale']}, PostgreSQL {meta['postgres_version']}, "
        f"{meta['cpus']} CPU(s)."
    )


def benchmark(args: argparse.Namespace, work: Path) -> int:
    """Start everything, run the matrix, report; stop everything on the way out."""
    bin_dir = args.pg_bin or wheel_bin_dir()
    pgbench = client_tool(bin_dir, "pgbench")
    psql = client_tool(bin_dir, "psql")
    started = started_at()

    def measure(target: Target, run: Run, log_dir: Path) -> None:
        run_pgbench(pgbench, WORKLOAD, args.duration, target, run, log_dir)

    with cluster(work, bin_dir, psql) as cl:
        init_pgbench(pgbench, cl.pg.port, args.scale)
        targets = start_targets(cl, args.targets, ProxyOptions(args.python))
        warm_up(pgbench, WORKLOAD, targets, args.warmup, WARMUP_MODE)
        runs = run_matrix(
            targets, args.modes, args.clients, args.rounds, measure, work / "pgbench-logs"
        )
        meta = {
            "duration": args.duration,
            "rounds": args.rounds,
            "scale": args.scale,
            "postgres_version": server_version(psql, cl.pg.port),
            "pgbench": pgbench_version(pgbench),
            **machine(),
            "started": started,
            "targets": args.targets,
            "modes": args.modes,
            "clients": args.clients,
        }
        return publish(runs, args.targets, meta, intro(meta), args.markdown, args.json)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    return cli.run(lambda work: benchmark(args, work), args.keep)


if __name__ == "__main__":
    sys.exit(main())
