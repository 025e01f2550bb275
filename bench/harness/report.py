"""The human-readable result: a throughput table with ratios between targets and
a 1-client latency table, as fixed-width text or GitHub markdown.

Which ratios appear follows from the targets: each proxy against each baseline
that ran (direct, PgBouncer, the bare forwarder), and PgBouncer and the forwarder
against direct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.harness.processes import PROXY_WORKERS
from bench.harness.stats import paired_median

SHORT_NAMES = {"pgbouncer": "pgb", "forwarder": "fwd"}  # in ratio column headers
# What each proxy target's TPS is divided by, in column order (when both ran).
PROXY_BASES = ("direct", "pgbouncer", "forwarder")
# Ratios between the baselines themselves, after the proxies' columns.
BASELINE_PAIRS = (("pgbouncer", "direct"), ("forwarder", "direct"))
PAIRING_NOTE = "Ratios and added latency: median over rounds of the values paired within a round."


def ratio_pairs(targets: Sequence[str]) -> list[tuple[str, str]]:
    """The (target, base) pairs whose TPS ratio gets a column."""
    proxies = [t for t in targets if t in PROXY_WORKERS]
    pairs = [*((proxy, base) for proxy in proxies for base in PROXY_BASES), *BASELINE_PAIRS]
    return [(target, base) for target, base in pairs if target in targets and base in targets]


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
    summary: list[dict[str, Any]], targets: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the TPS table (with ratios for each proxy target)."""
    pairs = ratio_pairs(targets)
    headers = ["mode", "clients", *(f"{t} tps" for t in targets)]
    headers += [f"{SHORT_NAMES.get(t, t)}/{SHORT_NAMES.get(b, b)}" for t, b in pairs]
    rows = []
    for cell in summary:
        row = [cell["mode"], str(cell["clients"]), *(number(cell[t]["tps"]) for t in targets)]
        rows.append(row + [ratio(cell, t, b) for t, b in pairs])
    return headers, rows


def latency_table(
    summary: list[dict[str, Any]], targets: Sequence[str]
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
    intro: str, summary: list[dict[str, Any]], targets: Sequence[str], markdown: bool
) -> str:
    """The full report: ``intro`` (what ran where) with a note on how the ratios are
    taken, the throughput table, the 1-client latency table."""
    parts = [f"{intro} {PAIRING_NOTE}", "", "Throughput (TPS, higher is better):", ""]
    parts.append(render(*tps_table(summary, targets), markdown))
    lat_headers, lat_rows = latency_table(summary, targets)
    if lat_rows:
        parts += ["", "Latency at 1 client (µs, p50 / p99; added = target - direct):", ""]
        parts.append(render(lat_headers, lat_rows, markdown))
    return "\n".join(parts)
