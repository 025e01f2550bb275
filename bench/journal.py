"""Journal benchmark: what the durable write journal adds to a synced statement.

One run starts a throwaway PostgreSQL (``synchronous_commit = on``: the journal's
durability is what is measured), the HubSpot sandbox and writeproxy with the demo
schema, then, interleaved for ``--rounds`` rounds of ``--count`` operations each:

* ``statement``: a synced single-row ``INSERT … RETURNING`` through the proxy
  (autocommit; the journal writes an intent before the vendor call and the outcome after);
* ``api``: the same create sent straight to the sandbox (httpx, one connection);
* ``local``: a plain single-row INSERT straight to PostgreSQL;
* ``journal``: the journal's two writes for one call (``record_intent`` +
  ``record_outcome``) on its own pool, as the executor does them.

It prints the p50/p99 of each (median over rounds) and the ratios: journal / statement
and the statement's overhead beyond API + local. No assertion: figures go to
docs/benchmarks.md.

    .venv/bin/python bench/journal.py --count 300 --rounds 3
"""

# ruff: noqa: E402  (the imports below need the repository root on sys.path first)
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx
import psycopg

from bench.harness import log
from bench.harness.cli import workspace
from bench.harness.clients import client_tool
from bench.harness.processes import PG_SETTINGS, ProxyOptions, cluster, free_port, start_proxy
from bench.harness.stats import percentile
from proxy.connectors.base import CallOutcome, Operation, VendorCall
from proxy.demo import SANDBOX_TOKEN, register_properties, sandbox_process, schema_sql
from proxy.embedded import wheel_bin_dir
from proxy.journal import Journal

TOKEN_ENV = "WRITEPROXY_BENCH_HUBSPOT_TOKEN"
Measure = Callable[[int], Awaitable[None]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300, help="operations per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--pg-bin", type=Path, default=None, help="PostgreSQL bin directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args(argv)


async def timed(measure: Measure, count: int) -> list[float]:
    """Latencies in milliseconds of ``count`` sequential operations."""
    samples = []
    for i in range(count):
        started = time.perf_counter()
        await measure(i)
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)


async def run(args: argparse.Namespace, work: Path) -> None:
    bin_dir = args.pg_bin or wheel_bin_dir()
    psql = client_tool(bin_dir, "psql")
    settings = {**PG_SETTINGS, "synchronous_commit": "on"}
    with cluster(work, bin_dir, psql, settings) as cl, sandbox_process(free_port()) as api_url:
        register_properties(api_url, SANDBOX_TOKEN)
        with psycopg.connect(cl.pg.url, autocommit=True) as conn:
            conn.execute(schema_sql())
        config = work / "writeproxy.toml"
        config.write_text(
            f'[connectors.hubspot]\nkind = "hubspot"\nbase_url = "{api_url}"\n'
            f'token_env = "{TOKEN_ENV}"\nschema = "hubspot"\n'
            # The proxy paces calls to HubSpot's published limit (100 per 10 s): lift
            # it, or every 100th statement measures the limiter's wait.
            "rate_limit_requests = 1000000\n"
        )
        env = {**os.environ, "WRITEPROXY_CONFIG": str(config), TOKEN_ENV: SANDBOX_TOKEN}
        target = start_proxy(cl, "proxy1", ProxyOptions(sys.executable, env=env))
        proxy_url = cl.pg.url.replace(f":{cl.pg.port}/", f":{target.port}/")
        through = await psycopg.AsyncConnection.connect(proxy_url, autocommit=True)
        direct = await psycopg.AsyncConnection.connect(cl.pg.url, autocommit=True)
        api = httpx.AsyncClient(
            base_url=api_url, headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}
        )
        journal = Journal(cl.pg.url)
        await journal.open()
        await direct.execute("CREATE TABLE bench_local (id serial PRIMARY KEY, email text)")

        async def statement(i: int) -> None:
            await through.execute(
                "INSERT INTO hubspot.contact (email) VALUES (%s) RETURNING id",
                (f"s{round_}-{i}@bench.io",),
            )

        async def api_alone(i: int) -> None:
            reply = await api.post(
                "/crm/v3/objects/contacts",
                json={"properties": {"email": f"a{round_}-{i}@bench.io"}},
            )
            reply.raise_for_status()

        async def local(i: int) -> None:
            await direct.execute(
                "INSERT INTO bench_local (email) VALUES (%s)", (f"l{round_}-{i}@bench.io",)
            )

        async def journal_writes(i: int) -> None:
            call = VendorCall(Operation.CREATE, "contacts", ({"properties": {"email": "x"}},))
            entry = await journal.record_intent(call, xid=1, connector="hubspot")
            await journal.record_call_outcome(entry, call, CallOutcome())

        measures: dict[str, Measure] = {
            "statement": statement,
            "api": api_alone,
            "local": local,
            "journal": journal_writes,
        }
        p50: dict[str, list[float]] = {name: [] for name in measures}
        p99: dict[str, list[float]] = {name: [] for name in measures}
        for round_ in range(args.rounds):
            for name, measure in measures.items():
                samples = await timed(measure, args.count)
                p50[name].append(percentile(samples, 50))
                p99[name].append(percentile(samples, 99))
                log(f"round {round_ + 1} {name}: p50 {p50[name][-1]:.3f} ms")
        await journal.close()
        await api.aclose()
        await through.close()
        await direct.close()
        report(
            args,
            {n: statistics.median(v) for n, v in p50.items()},
            {n: statistics.median(v) for n, v in p99.items()},
        )


def report(args: argparse.Namespace, p50: dict[str, float], p99: dict[str, float]) -> None:
    print(
        f"synced single-row INSERT, {args.count} ops x {args.rounds} rounds (median of "
        f"round p50/p99), synchronous_commit=on, {os.cpu_count()} CPU(s)"
    )
    print(f"{'what':<12}{'p50 ms':>10}{'p99 ms':>10}")
    for name in p50:
        print(f"{name:<12}{p50[name]:>10.3f}{p99[name]:>10.3f}")
    overhead = p50["statement"] - p50["api"] - p50["local"]
    print(f"statement overhead beyond API + local INSERT (p50): {overhead:.3f} ms")
    print(
        f"journal's two writes (p50): {p50['journal']:.3f} ms = "
        f"{p50['journal'] / p50['statement']:.0%} of the statement, "
        f"{p50['journal'] / overhead:.0%} of the overhead"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with workspace(args.keep) as work:
        asyncio.run(run(args, work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
