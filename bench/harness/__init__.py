"""Reusable pieces of the benchmark scenarios in ``bench/``.

A scenario (``bench/passthrough.py``, later a synced-write one) is one workload
measured against several targets; everything around the workload lives here so
that each scenario is short and all of them behave and report alike:

- ``cli``: the shared command-line flags, signal handling and temp workspace;
- ``install``: fetching a missing server binary (PgBouncer) with apt-get;
- ``clients``: libpq connection options and the ``psql`` helpers;
- ``processes``: starting and stopping PostgreSQL, PgBouncer, the forwarder and
  writeproxy;
- ``forwarder``: the bare uvloop TCP byte forwarder, the ceiling a Python relay
  can reach (a target; run as ``python -m bench.harness.forwarder``);
- ``pgbench``: running ``pgbench`` as the load generator;
- ``runner``: the rounds x cells x targets loop and writing the results;
- ``stats``: per-run records, percentiles, medians and within-round pairing;
- ``report``: the TPS/ratio and latency tables.

Scenarios import it as ``bench.harness`` (with the repository root on
``sys.path``, which also makes ``proxy`` importable).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def log(message: str) -> None:
    """Progress output, on stderr so stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)
