"""The numbers: one record per measured run, and how runs become a summary.

Each run yields TPS and latency percentiles; a summary holds, per (mode, clients)
cell and target, the per-round values and their medians. Ratios and differences
between targets are taken within a round (runs seconds apart) before the median
over rounds, which cancels most slow drift of the machine.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

METRICS = ("tps", "p50_us", "p99_us")


def percentile(sorted_values: list[float], pct: float) -> float:
    """Linear-interpolated percentile of already sorted values."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass
class Run:
    """One run of a workload against one target (``error`` when it failed)."""

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

    def add_latencies(self, latencies: list[float]) -> None:
        """Fill the transaction count and latency figures from per-transaction
        latencies (µs, sorted)."""
        self.transactions = len(latencies)
        if latencies:
            self.p50_us = percentile(latencies, 50)
            self.p99_us = percentile(latencies, 99)
            self.mean_us = statistics.fmean(latencies)


def median_of(runs: list[Run], attr: str) -> float | None:
    """Median of ``attr`` over the successful runs (None when all failed)."""
    values = [getattr(run, attr) for run in runs if getattr(run, attr) is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[Run], targets: Sequence[str], rounds: int) -> list[dict[str, Any]]:
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
