"""The measurement loop every scenario shares, and where its results go.

For each round, each (mode, clients) cell and each target a scenario-supplied
``measure`` runs the workload once; the targets of a cell run back to back, the
starting target rotating per round, so drift hits all targets alike. Afterwards
the runs are summarised, printed as the report, optionally saved as JSON, and
turned into the exit status (1 when any run failed).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.harness import log
from bench.harness.processes import Target
from bench.harness.report import report
from bench.harness.stats import Run, summarise

# Runs the workload of ``run``'s cell against the target and records the outcome
# in ``run``; the Path is an empty directory for its logs.
Measure = Callable[[Target, Run, Path], None]


def run_matrix(
    targets: list[Target],
    modes: Sequence[str],
    clients: Sequence[int],
    rounds: int,
    measure: Measure,
    log_root: Path,
) -> list[Run]:
    """Every (round, mode, clients) cell, the targets back to back (rotated per round);
    a target that did not start gets a failed run without being measured."""
    runs: list[Run] = []
    cells = [(mode, count) for mode in modes for count in clients]
    total = rounds * len(cells) * len(targets)
    for round_no in range(rounds):
        shift = round_no % len(targets)
        order = targets[shift:] + targets[:shift]
        for mode, count in cells:
            for target in order:
                run = Run(target.name, mode, count, round_no, error=target.error)
                if target.error is None:
                    log_dir = log_root / f"r{round_no}-{mode}-c{count}-{target.name}"
                    log_dir.mkdir(parents=True)
                    measure(target, run, log_dir)
                runs.append(run)
                log(f"[{len(runs)}/{total}] {describe(run)}")
    return runs


def describe(run: Run) -> str:
    """One progress line for a finished run."""
    head = f"round {run.round} {run.mode:<8} c={run.clients} {run.target:<9}"
    if run.error:
        return f"{head} FAILED {run.error}"
    return f"{head} tps={run.tps:10.1f} p50={run.p50_us or 0:7.0f}us p99={run.p99_us or 0:7.0f}us"


def started_at() -> str:
    """The local time now, as recorded in the results' metadata."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def machine() -> dict[str, Any]:
    """The machine and interpreter the benchmark ran on."""
    return {
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
    }


def publish(
    runs: list[Run],
    targets: Sequence[str],
    meta: dict[str, Any],
    intro: str,
    markdown: bool,
    json_path: Path | None,
) -> int:
    """Print the report, save the raw numbers when asked; 1 when any run failed."""
    summary = summarise(runs, targets, meta["rounds"])
    print(report(intro, summary, targets, markdown))
    if json_path is not None:
        raw = {"meta": meta, "summary": summary, "runs": [asdict(r) for r in runs]}
        json_path.write_text(json.dumps(raw, indent=2) + "\n")
        log(f"wrote {json_path}")
    return 1 if any(run.error for run in runs) else 0
