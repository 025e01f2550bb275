"""Prometheus metrics (prometheus-client), shared by every worker process.

With ``admin_listen`` set, the proxy points ``PROMETHEUS_MULTIPROC_DIR`` at a private
directory before any worker starts, so every worker's counts land there and any worker's
``/metrics`` answers for the whole proxy. prometheus-client picks its storage when it is
first imported, so it is imported here lazily, on the first recorded event — after that
variable is set. Without ``admin_listen`` nothing is recorded (no cost on the hot path).
"""

from __future__ import annotations

import os
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_instruments: dict[str, Any] | None = None


def enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def _get() -> dict[str, Any] | None:
    global _instruments
    if _instruments is None and enabled():
        from prometheus_client import Counter, Gauge, Histogram

        _instruments = {
            "clients": Gauge(
                "writeproxy_client_connections",
                "Client connections open",
                multiprocess_mode="livesum",
            ),
            "sessions": Counter(
                "writeproxy_client_connections_accepted",
                "Client connections accepted (refused: over max_client_conn)",
                ["result"],
            ),
            "statements": Counter(
                "writeproxy_synced_statements",
                "Synced statements handled, by table, kind and outcome",
                ["table", "kind", "outcome"],
            ),
            "vendor": Counter(
                "writeproxy_vendor_requests",
                "Vendor API requests, by vendor, method and HTTP status ('error': no answer)",
                ["vendor", "method", "status"],
            ),
            "latency": Histogram(
                "writeproxy_vendor_request_seconds",
                "Vendor API request latency",
                ["vendor"],
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            ),
            "retries": Counter(
                "writeproxy_vendor_retries", "Vendor requests sent again", ["vendor"]
            ),
            "backlog": Gauge(
                "writeproxy_journal_open_entries",
                "Journal entries not resolved yet, by state (the database's, at the last pass)",
                ["state"],
                multiprocess_mode="max",
            ),
            "waits": Counter(
                "writeproxy_vendor_rate_limit_wait_seconds",
                "Time requests waited for the vendor's rate budget",
                ["vendor"],
            ),
            "resolutions": Counter(
                "writeproxy_journal_resolutions",
                "Journal entries resolved, by outcome (committed, compensated, conflict, ...)",
                ["outcome"],
            ),
        }
    return _instruments


def client_connected(delta: int, refused: bool = False) -> None:
    instruments = _get()
    if instruments is not None:
        if delta > 0:
            instruments["sessions"].labels("refused" if refused else "accepted").inc()
        if not refused:
            instruments["clients"].inc(delta)


def synced_statement(table: str, kind: str, outcome: str) -> None:
    instruments = _get()
    if instruments is not None:
        instruments["statements"].labels(table, kind, outcome).inc()


def vendor_request(vendor: str, method: str, status: str, seconds: float) -> None:
    instruments = _get()
    if instruments is not None:
        instruments["vendor"].labels(vendor, method, status).inc()
        instruments["latency"].labels(vendor).observe(seconds)


def vendor_retry(vendor: str) -> None:
    instruments = _get()
    if instruments is not None:
        instruments["retries"].labels(vendor).inc()


def journal_resolved(outcome: str) -> None:
    instruments = _get()
    if instruments is not None:
        instruments["resolutions"].labels(outcome).inc()


def journal_backlog(open_by_state: dict[str, int]) -> None:
    instruments = _get()
    if instruments is not None:
        for state in ("intent", "applied", "unknown", "compensating"):
            instruments["backlog"].labels(state).set(open_by_state.get(state, 0))


def rate_limit_wait(vendor: str, seconds: float) -> None:
    instruments = _get()
    if instruments is not None and seconds > 0.001:  # a real wait, not scheduling
        instruments["waits"].labels(vendor).inc(seconds)


def exposition() -> bytes:
    """Every worker's metrics, merged (Prometheus text format)."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return bytes(generate_latest(registry))


def worker_gone(pid: int) -> None:
    """A worker exited: its live gauges no longer count."""
    if enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
