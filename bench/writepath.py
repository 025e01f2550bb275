"""Write-path benchmark: what a synced write costs beyond the vendor API and the local
write, and how well concurrent sessions use the API.

One run starts a throwaway PostgreSQL (``synchronous_commit = on``), the HubSpot
sandbox and writeproxy (1 and 2 workers) with the demo schema, then, for ``--rounds``
rounds (ratios are paired within a round, medians reported):

* sequential, one session, the sandbox answering at once (``--count`` each, p50):
  - ``api create`` / ``api update`` / ``api archive``: the calls alone (httpx);
  - ``local insert`` / ``local update`` / ``local delete``: plain statements on a local
    table, straight to PostgreSQL;
  - ``synced insert`` / ``synced update`` / ``synced delete``: the same through the
    proxy on ``hubspot.contact`` (autocommit, by id);
  - ``signup``: BEGIN, INSERT a user, INSERT a contact, COMMIT through the proxy, vs
    ``local signup`` (the same on two local tables) + ``api create``;
* concurrent, the sandbox answering after ``--latency-ms`` (50): ``--sessions`` (16)
  sessions inserting contacts for ``--duration`` s through a 1-worker and a 2-worker
  proxy, vs the same number of tasks calling the API alone: writes/s and the ratio;
* bulk: ``INSERT … SELECT`` of ``--bulk`` (1,000) rows through the proxy vs the
  ``bulk / 100`` batch-create calls sent straight to the API, one after another;
* the proxies' resident memory (sum of their processes) before and after.

The proxy paces calls to HubSpot's published limit; the benchmark lifts it (else it
would measure the limiter's waits). No assertion: figures go to docs/benchmarks.md.

    .venv/bin/python bench/writepath.py --rounds 3
"""

# ruff: noqa: E402  (the imports below need the repository root on sys.path first)
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx
import psycopg

from bench.harness import log
from bench.harness.cli import workspace
from bench.harness.clients import client_tool
from bench.harness.processes import PG_SETTINGS, ProxyOptions, Target, cluster, free_port
from bench.harness.processes import start_proxy as start_target
from bench.harness.stats import percentile
from proxy.demo import SANDBOX_TOKEN, register_properties, sandbox_process, schema_sql
from proxy.embedded import wheel_bin_dir

TOKEN_ENV = "WRITEPROXY_BENCH_HUBSPOT_TOKEN"
CONTACTS = "/crm/v3/objects/contacts"
Op = Callable[[int], Awaitable[None]]
_unique = itertools.count()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="sequential ops per kind")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians reported)")
    parser.add_argument("--sessions", type=int, default=16, help="concurrent sessions")
    parser.add_argument("--duration", type=float, default=5.0, help="concurrent run, s")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="API latency, ms")
    parser.add_argument("--bulk", type=int, default=1000, help="rows of the bulk INSERT")
    parser.add_argument("--pg-bin", type=Path, default=None, help="PostgreSQL bin directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args(argv)


def email(prefix: str) -> str:
    return f"{prefix}-{next(_unique)}@bench.io"


async def timed(op: Op, count: int) -> float:
    """p50 in milliseconds of ``count`` sequential operations."""
    samples = []
    for i in range(count):
        started = time.perf_counter()
        await op(i)
        samples.append((time.perf_counter() - started) * 1000)
    return percentile(sorted(samples), 50)


async def throughput(op: Op, sessions: int, duration: float) -> float:
    """Operations per second of ``sessions`` tasks running ``op`` back to back (``op``
    gets the task's index: its session)."""
    deadline = time.monotonic() + duration
    done = 0

    async def loop(session: int) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await op(session)
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(loop(i) for i in range(sessions)))
    return done / (time.monotonic() - started)


def rss_mib(target: Target) -> float:
    """Resident memory of a proxy's processes (supervisor and workers), MiB."""
    total = 0
    for pid in target.pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


@dataclass
class Results:
    p50: dict[str, list[float]] = field(default_factory=dict)
    rates: dict[str, list[float]] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)

    def add(self, table: dict[str, list[float]], name: str, value: float) -> None:
        table.setdefault(name, []).append(value)


class Bench:
    """The connections and the operations measured."""

    def __init__(self, api_url: str, pg_url: str, proxy_urls: dict[str, str]) -> None:
        self.api = httpx.AsyncClient(
            base_url=api_url,
            headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
            limits=httpx.Limits(max_connections=64),
        )
        self.api_url = api_url
        self.pg_url = pg_url
        self.proxy_urls = proxy_urls

    async def api_create(self, prefix: str = "a") -> str:
        reply = await self.api.post(CONTACTS, json={"properties": {"email": email(prefix)}})
        reply.raise_for_status()
        return str(reply.json()["id"])

    async def set_latency(self, ms: float) -> None:
        (await self.api.post("/_sandbox/config", json={"latency_ms": ms})).raise_for_status()

    async def connect(self, url: str) -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def sequential(self, count: int, out: Results) -> None:
        """Single-row operations, one after another, on one session each."""
        through = await self.connect(self.proxy_urls["proxy1"])
        direct = await self.connect(self.pg_url)
        ids: list[str] = []
        local_ids: list[int] = []

        async def synced_insert(_: int) -> None:
            cur = await through.execute(
                "INSERT INTO hubspot.contact (email) VALUES (%s) RETURNING id", (email("s"),)
            )
            row = await cur.fetchone()
            assert row is not None
            ids.append(str(row[0]))

        async def synced_update(i: int) -> None:
            await through.execute(
                "UPDATE hubspot.contact SET firstname = %s WHERE id = %s", (f"f{i}", ids[i])
            )

        async def synced_delete(i: int) -> None:
            await through.execute("DELETE FROM hubspot.contact WHERE id = %s", (ids[i],))

        async def local_insert(_: int) -> None:
            cur = await direct.execute(
                "INSERT INTO bench_local (email) VALUES (%s) RETURNING id", (email("l"),)
            )
            row = await cur.fetchone()
            assert row is not None
            local_ids.append(int(row[0]))

        async def local_update(i: int) -> None:
            await direct.execute(
                "UPDATE bench_local SET firstname = %s WHERE id = %s", (f"f{i}", local_ids[i])
            )

        async def local_delete(i: int) -> None:
            await direct.execute("DELETE FROM bench_local WHERE id = %s", (local_ids[i],))

        api_ids: list[str] = []

        async def api_create(_: int) -> None:
            api_ids.append(await self.api_create())

        async def api_update(i: int) -> None:
            reply = await self.api.patch(
                f"{CONTACTS}/{api_ids[i]}", json={"properties": {"firstname": f"f{i}"}}
            )
            reply.raise_for_status()

        async def api_archive(i: int) -> None:
            (await self.api.delete(f"{CONTACTS}/{api_ids[i]}")).raise_for_status()

        async def signup(_: int) -> None:
            async with through.transaction():
                await through.execute("INSERT INTO public.users (email) VALUES (%s)", (email("u"),))
                await through.execute(
                    "INSERT INTO hubspot.contact (email) VALUES (%s)", (email("c"),)
                )

        async def local_signup(_: int) -> None:
            async with direct.transaction():
                await direct.execute("INSERT INTO public.users (email) VALUES (%s)", (email("u"),))
                await direct.execute("INSERT INTO bench_local (email) VALUES (%s)", (email("c"),))

        ops: list[tuple[str, Op]] = [
            ("api create", api_create),
            ("local insert", local_insert),
            ("synced insert", synced_insert),
            ("api update", api_update),
            ("local update", local_update),
            ("synced update", synced_update),
            ("api archive", api_archive),
            ("local delete", local_delete),
            ("synced delete", synced_delete),
            ("local signup", local_signup),
            ("signup", signup),
        ]
        round_p50: dict[str, float] = {}
        for name, op in ops:
            round_p50[name] = await timed(op, count)
            out.add(out.p50, name, round_p50[name])
            log(f"{name}: p50 {round_p50[name]:.3f} ms")
        for verb, api in (("insert", "create"), ("update", "update"), ("delete", "archive")):
            overhead = (
                round_p50[f"synced {verb}"] - round_p50[f"api {api}"] - round_p50[f"local {verb}"]
            )
            out.add(out.ratios, f"synced {verb}: overhead ms", overhead)
        signup_overhead = round_p50["signup"] - round_p50["api create"] - round_p50["local signup"]
        out.add(out.ratios, "signup: overhead ms", signup_overhead)
        await through.close()
        await direct.close()

    async def concurrent(self, sessions: int, duration: float, out: Results) -> None:
        """``sessions`` sessions writing at once, the API slow: writes/s vs the API's."""

        async def api_alone(_: int) -> None:
            await self.api_create("c")

        api_rate = await throughput(api_alone, sessions, duration)
        out.add(out.rates, f"API alone, {sessions} tasks", api_rate)
        for name, url in self.proxy_urls.items():
            pool = [await self.connect(url) for _ in range(sessions)]

            async def insert(session: int, pool: list[psycopg.AsyncConnection] = pool) -> None:
                await pool[session].execute(
                    "INSERT INTO hubspot.contact (email) VALUES (%s)", (email("k"),)
                )

            rate = await throughput(insert, sessions, duration)
            out.add(out.rates, f"{name}, {sessions} sessions", rate)
            out.add(out.ratios, f"{name} writes/s vs API alone", rate / api_rate)
            log(f"{name}: {rate:.1f} writes/s (API alone {api_rate:.1f})")
            for conn in pool:
                await conn.close()

    async def bulk(self, rows: int, out: Results) -> None:
        """One INSERT … SELECT of ``rows`` rows vs the batch calls alone."""
        batch = 100
        started = time.perf_counter()
        for offset in range(0, rows, batch):
            inputs = [
                {"properties": {"email": email("b")}} for _ in range(min(batch, rows - offset))
            ]
            reply = await self.api.post(f"{CONTACTS}/batch/create", json={"inputs": inputs})
            reply.raise_for_status()
        api_s = time.perf_counter() - started
        through = await self.connect(self.proxy_urls["proxy1"])
        tag = next(_unique)
        started = time.perf_counter()
        await through.execute(
            "INSERT INTO hubspot.contact (email) "
            "SELECT 'bulk-' || %s::text || '-' || g || '@bench.io' FROM generate_series(1, %s) g",
            (tag, rows),
        )
        proxy_s = time.perf_counter() - started
        await through.close()
        out.add(out.p50, f"bulk {rows} rows through the proxy (ms)", proxy_s * 1000)
        out.add(out.p50, f"bulk {rows // batch} batch calls alone (ms)", api_s * 1000)
        out.add(out.ratios, f"bulk {rows}: API alone / proxy (time)", api_s / proxy_s)

    async def aclose(self) -> None:
        await self.api.aclose()


async def run(args: argparse.Namespace, work: Path) -> None:
    bin_dir = args.pg_bin or wheel_bin_dir()
    psql = client_tool(bin_dir, "psql")
    settings = {**PG_SETTINGS, "synchronous_commit": "on"}
    with cluster(work, bin_dir, psql, settings) as cl, sandbox_process(free_port()) as api_url:
        register_properties(api_url, SANDBOX_TOKEN)
        with psycopg.connect(cl.pg.url, autocommit=True) as conn:
            conn.execute(schema_sql())
            conn.execute(
                "CREATE TABLE bench_local (id serial PRIMARY KEY, email text, firstname text)"
            )
        config = work / "writeproxy.toml"
        config.write_text(
            f'[connectors.hubspot]\nkind = "hubspot"\nbase_url = "{api_url}"\n'
            f'token_env = "{TOKEN_ENV}"\nschema = "hubspot"\n'
            "rate_limit_requests = 1000000\n"
        )
        env = {**os.environ, "WRITEPROXY_CONFIG": str(config), TOKEN_ENV: SANDBOX_TOKEN}
        options = ProxyOptions(sys.executable, env=env)
        targets = {name: start_target(cl, name, options) for name in ("proxy1", "proxy2")}
        urls = {
            name: cl.pg.url.replace(f":{cl.pg.port}/", f":{t.port}/") for name, t in targets.items()
        }
        out = Results()
        out.memory = {f"{name} before": rss_mib(t) for name, t in targets.items()}
        bench = Bench(api_url, cl.pg.url, urls)
        try:
            for round_ in range(args.rounds):
                log(f"round {round_ + 1} of {args.rounds}")
                await bench.set_latency(0)
                await bench.sequential(args.count, out)
                await bench.bulk(args.bulk, out)
                await bench.set_latency(args.latency_ms)
                await bench.concurrent(args.sessions, args.duration, out)
        finally:
            await bench.set_latency(0)
            await bench.aclose()
        out.memory |= {f"{name} after": rss_mib(t) for name, t in targets.items()}
        report(args, out)


def report(args: argparse.Namespace, out: Results) -> None:
    print(
        f"write path, {args.rounds} round(s), medians; sequential: {args.count} ops, API "
        f"latency 0; concurrent: {args.sessions} sessions, API latency {args.latency_ms:g} ms; "
        f"{os.cpu_count()} CPU(s), synchronous_commit=on"
    )
    print("\n| sequential (p50 ms) and bulk (ms) | value |\n| --- | ---: |")
    for name, values in out.p50.items():
        print(f"| {name} | {statistics.median(values):.2f} |")
    print("\n| concurrent | writes/s |\n| --- | ---: |")
    for name, values in out.rates.items():
        print(f"| {name} | {statistics.median(values):.1f} |")
    print("\n| paired within a round | median |\n| --- | ---: |")
    for name, values in out.ratios.items():
        print(f"| {name} | {statistics.median(values):.2f} |")
    print("\n| proxy memory (RSS, all processes) | MiB |\n| --- | ---: |")
    for name, mib in out.memory.items():
        print(f"| {name} | {mib:.1f} |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with workspace(args.keep) as work:
        asyncio.run(run(args, work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
