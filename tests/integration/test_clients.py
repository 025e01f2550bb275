"""Real clients through the proxy: asyncpg, psql and pgbench must behave exactly as
they do when connected to PostgreSQL directly."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import io
import ipaddress
import os
import re
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psycopg
import pytest

from tests.support import ProxyProcess

TIMEOUT = 30
PsqlResult = tuple[int, str, str]


async def both(proxy: ProxyProcess, direct_url: str, check: Callable[[str], Awaitable[Any]]) -> Any:
    """Run ``check`` directly and through the proxy; they must observe the same."""
    direct = await asyncio.wait_for(check(direct_url), TIMEOUT)
    through = await asyncio.wait_for(check(proxy.url()), TIMEOUT)
    assert through == direct
    return through


def execute_direct(direct_url: str, *statements: str) -> None:
    with psycopg.connect(direct_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


# -- asyncpg ------------------------------------------------------------------


async def test_asyncpg_prepared_statement_reused(proxy: ProxyProcess, direct_url: str) -> None:
    """A named prepared statement is parsed once and executed many times."""

    async def check(url: str) -> Any:
        conn = await asyncpg.connect(url)
        try:
            stmt = await conn.prepare("SELECT $1::int8 * 2 AS doubled, $2::text || '!' AS shout")
            rows = [tuple(await stmt.fetchrow(i, str(i))) for i in range(300)]
            params = [t.name for t in stmt.get_parameters()]
            attrs = [(a.name, a.type.name) for a in stmt.get_attributes()]
            # fetchval goes through asyncpg's statement cache: prepared once, reused.
            cached = [await conn.fetchval("SELECT $1::int + 1", i) for i in range(300)]
            prepared = await conn.fetch(
                "SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1%'"
            )
            await conn.executemany("SELECT $1::int", [(i,) for i in range(50)])
            return rows, params, attrs, cached, sorted(r[0] for r in prepared)
        finally:
            await conn.close()

    rows, params, attrs, cached, prepared = await both(proxy, direct_url, check)
    assert rows[7] == (14, "7!") and len(rows) == 300
    assert params == ["int8", "text"]
    assert attrs == [("doubled", "int8"), ("shout", "text")]
    assert cached == list(range(1, 301))
    assert "SELECT $1::int + 1" in prepared


async def test_asyncpg_without_statement_cache(proxy: ProxyProcess, direct_url: str) -> None:
    """With the cache off asyncpg uses the unnamed statement for every query."""

    async def check(url: str) -> list[Any]:
        conn = await asyncpg.connect(url, statement_cache_size=0)
        try:
            return [await conn.fetchval("SELECT $1::text || 'x'", str(i)) for i in range(100)]
        finally:
            await conn.close()

    assert (await both(proxy, direct_url, check))[42] == "42x"


CODEC_QUERY = """
SELECT $1::int2, $2::int4, $3::int8, $4::float4, $5::float8, $6::numeric, $7::text,
       $8::bytea, $9::date, $10::timestamptz, $11::interval, $12::uuid, $13::jsonb,
       $14::int[], $15::text[], $16::int4range, $17::tstzrange, $18::bool, $19::inet,
       $20::numeric[], ROW(1, 'a'::text, NULL::int, 1.5::float8) AS rec
"""
WHEN = dt.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=dt.UTC)
CODEC_PARAMS: tuple[Any, ...] = (
    -32768,
    2**31 - 1,
    -(2**63),
    1.5,
    2.25e300,
    decimal.Decimal("12345678901234567890.123456789"),
    "text é ☃ \x01",
    bytes(range(256)),
    dt.date(2024, 2, 29),
    WHEN,
    dt.timedelta(days=3, hours=4, microseconds=5),
    uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    '{"a": [1, 2, {"b": null}], "é": "x"}',
    [1, None, 3],
    ["a", "b,c", "", None],
    asyncpg.Range(1, 10),
    asyncpg.Range(WHEN, None, lower_inc=True),
    True,
    ipaddress.ip_interface("192.168.0.1/24"),
    [decimal.Decimal("1.10"), decimal.Decimal("-0.000001")],
)


async def test_asyncpg_binary_codecs(proxy: ProxyProcess, direct_url: str) -> None:
    """Many types round-trip through asyncpg's binary codecs unchanged."""

    async def check(url: str) -> Any:
        conn = await asyncpg.connect(url)
        try:
            row = await conn.fetchrow(CODEC_QUERY, *CODEC_PARAMS)
            assert row is not None
            big = await conn.fetch("SELECT i, md5(i::text)::bytea FROM generate_series(1, 5000) i")
            return tuple(row), [tuple(r) for r in big]
        finally:
            await conn.close()

    row, big = await both(proxy, direct_url, check)
    jsonb = '{"a": [1, 2, {"b": null}], "é": "x"}'  # normalised by the server
    assert row[:-1] == (*CODEC_PARAMS[:12], jsonb, *CODEC_PARAMS[13:])
    assert tuple(row[-1]) == (1, "a", None, 1.5)
    assert len(big) == 5000 and big[-1][0] == 5000


async def test_asyncpg_copy(proxy: ProxyProcess, direct_url: str) -> None:
    """copy_records_to_table (binary COPY FROM STDIN) and copy_from_query."""
    execute_direct(
        direct_url,
        "DROP TABLE IF EXISTS clients_asyncpg_copy",
        "CREATE TABLE clients_asyncpg_copy (id int PRIMARY KEY, name text, data bytea, at date)",
    )
    records = [
        (i, f"name {i}, \"quoted\"\t\n'é'" if i % 7 else None, bytes([i % 256]) * (i % 50),
         dt.date(2000, 1, 1) + dt.timedelta(days=i))
        for i in range(20_000)
    ]  # fmt: skip
    conn = await asyncpg.connect(proxy.url())
    try:
        result = await conn.copy_records_to_table("clients_asyncpg_copy", records=records)
        assert result == "COPY 20000"
        assert await conn.fetchval("SELECT count(*) FROM clients_asyncpg_copy") == 20_000
    finally:
        await conn.close()

    async def check(url: str) -> tuple[bytes, bytes, str]:
        conn = await asyncpg.connect(url)
        try:
            csv, binary = io.BytesIO(), io.BytesIO()
            query = "SELECT * FROM clients_asyncpg_copy WHERE id >= $1 ORDER BY id"
            status = await conn.copy_from_query(query, 10, output=csv, format="csv")
            await conn.copy_from_query(query, 0, output=binary, format="binary")
            return csv.getvalue(), binary.getvalue(), status
        finally:
            await conn.close()

    csv, binary, status = await both(proxy, direct_url, check)
    assert status == "COPY 19990"
    assert csv.startswith(b"10,") and len(binary) > 200_000


async def test_asyncpg_transactions(proxy: ProxyProcess, direct_url: str) -> None:
    """Commit, rollback on exception, and savepoints (nested transaction blocks)."""
    execute_direct(
        direct_url,
        "DROP TABLE IF EXISTS clients_asyncpg_tx",
        "CREATE TABLE clients_asyncpg_tx (id int PRIMARY KEY)",
    )
    conn = await asyncpg.connect(proxy.url())
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO clients_asyncpg_tx VALUES (1)")
        with pytest.raises(ZeroDivisionError):
            async with conn.transaction():
                await conn.execute("INSERT INTO clients_asyncpg_tx VALUES (2)")
                raise ZeroDivisionError
        async with conn.transaction(isolation="serializable"):
            await conn.execute("INSERT INTO clients_asyncpg_tx VALUES (3)")
            with pytest.raises(asyncpg.UniqueViolationError):
                async with conn.transaction():  # a savepoint
                    await conn.execute("INSERT INTO clients_asyncpg_tx VALUES (4)")
                    await conn.execute("INSERT INTO clients_asyncpg_tx VALUES (1)")
            assert conn.is_in_transaction()
        assert not conn.is_in_transaction()
        tx = conn.transaction()
        await tx.start()
        await conn.execute("INSERT INTO clients_asyncpg_tx VALUES (5)")
        await tx.rollback()
        ids = [r[0] for r in await conn.fetch("SELECT id FROM clients_asyncpg_tx ORDER BY id")]
    finally:
        await conn.close()
    assert ids == [1, 3]
    with psycopg.connect(direct_url) as direct:
        row = direct.execute("SELECT array_agg(id ORDER BY id) FROM clients_asyncpg_tx").fetchone()
    assert row == ([1, 3],)


ERROR_STATEMENTS = [
    ("SELECT 1/0", (), "22012"),
    ("SELEC 1", (), "42601"),
    ("SELECT * FROM no_such_table", (), "42P01"),
    ("SELECT $1::int / 0", (1,), "22012"),
    ("SELECT $1::int", ("not a number",), "22000"),  # asyncpg's encoder: DataError
    ("SELECT 'x'::int", (), "22P02"),
    (
        "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE='22023', MESSAGE='custom', "
        "DETAIL='some detail', HINT='a hint'; END $$",
        (),
        "22023",
    ),
]


@pytest.mark.parametrize(("statement", "args", "sqlstate"), ERROR_STATEMENTS)
async def test_asyncpg_errors_identical(
    proxy: ProxyProcess,
    direct_url: str,
    statement: str,
    args: tuple[Any, ...],
    sqlstate: str,
) -> None:
    """The same exception class, SQLSTATE and fields; the connection stays usable."""

    async def check(url: str) -> Any:
        conn = await asyncpg.connect(url)
        try:
            with pytest.raises(asyncpg.PostgresError) as info:
                await conn.fetch(statement, *args)
            after = await conn.fetchval("SELECT 41 + 1")
            exc = info.value
            return type(exc).__name__, exc.sqlstate, str(exc), exc.as_dict(), after
        finally:
            await conn.close()

    _name, got_sqlstate, text, _fields, after = await both(proxy, direct_url, check)
    assert got_sqlstate == sqlstate
    assert text and after == 42


async def test_asyncpg_cursor(proxy: ProxyProcess, direct_url: str) -> None:
    """Server-side cursors: iteration with prefetch, fetch, forward."""

    async def check(url: str) -> Any:
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                query = "SELECT i, repeat('y', i % 100) FROM generate_series(1, $1) i"
                rows = [tuple(r) async for r in conn.cursor(query, 2000, prefetch=64)]
                cur = await conn.cursor("SELECT generate_series(1, 100)")
                first = [r[0] for r in await cur.fetch(10)]
                skipped = await cur.forward(50)
                after = await cur.fetchrow()
                return rows, first, skipped, tuple(after) if after else None
        finally:
            await conn.close()

    rows, first, skipped, after = await both(proxy, direct_url, check)
    assert len(rows) == 2000 and rows[-1][0] == 2000
    assert first == list(range(1, 11))
    assert skipped == 50 and after == (61,)


async def test_asyncpg_listen_notify(proxy: ProxyProcess) -> None:
    """NOTIFY from one proxied session reaches a LISTENing proxied session."""
    received: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    listener = await asyncpg.connect(proxy.url())
    notifier = await asyncpg.connect(proxy.url())
    try:
        await listener.add_listener(
            "clients_chan",
            lambda _c, _pid, channel, payload: received.put_nowait((channel, payload)),
        )
        await notifier.execute("NOTIFY clients_chan, 'hello'")
        assert await asyncio.wait_for(received.get(), 5) == ("clients_chan", "hello")
        async with notifier.transaction():
            await notifier.execute("SELECT pg_notify('clients_chan', 'in tx é')")
            await asyncio.sleep(0.2)
            assert received.empty(), "delivered before COMMIT"
        assert await asyncio.wait_for(received.get(), 5) == ("clients_chan", "in tx é")
        # A listener that is idle (not querying) still gets notified asynchronously.
        await notifier.execute("NOTIFY clients_chan, 'idle'")
        assert await asyncio.wait_for(received.get(), 5) == ("clients_chan", "idle")
    finally:
        await asyncio.gather(listener.close(), notifier.close())


async def test_asyncpg_pool_concurrent(proxy: ProxyProcess, direct_url: str) -> None:
    """Ten tasks sharing an asyncpg pool, each with transactions and queries."""
    execute_direct(
        direct_url,
        "DROP TABLE IF EXISTS clients_asyncpg_pool",
        "CREATE TABLE clients_asyncpg_pool (task int, n int, PRIMARY KEY (task, n))",
    )

    async def task(pool: asyncpg.Pool, index: int) -> int:
        total = 0
        for n in range(20):
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO clients_asyncpg_pool VALUES ($1, $2)", index, n)
                total += await conn.fetchval(
                    "SELECT sum(n) FROM clients_asyncpg_pool WHERE task = $1", index
                )
        return total

    async with asyncpg.create_pool(proxy.url(), min_size=2, max_size=10) as pool:
        totals = await asyncio.wait_for(
            asyncio.gather(*(task(pool, i) for i in range(10))), TIMEOUT
        )
        count = await pool.fetchval("SELECT count(*) FROM clients_asyncpg_pool")
    expected = sum(n * (n + 1) // 2 for n in range(20))
    assert totals == [expected] * 10
    assert count == 200


# -- psql -----------------------------------------------------------------------


def psql(url: str, *args: str, stdin: str | None = None, cwd: Path | None = None) -> PsqlResult:
    """Run psql without ~/.psqlrc; return (exit code, stdout, stderr)."""
    result = subprocess.run(
        ["psql", "-X", "-d", url, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10", "PAGER": "", "PSQL_PAGER": "", "LC_ALL": "C"},
    )
    return result.returncode, result.stdout, result.stderr


def mask_port(result: PsqlResult, port: int | None) -> PsqlResult:
    code, out, err = result
    return code, re.sub(rf"\b{port}\b", "PORT", out), re.sub(rf"\b{port}\b", "PORT", err)


def psql_both(
    proxy: ProxyProcess, direct_url: str, *args: str, db: str = "postgres", **kw: Any
) -> PsqlResult:
    """Run psql directly and through the proxy; the outputs must match (ports aside)."""
    direct_url = urlsplit(direct_url)._replace(path=f"/{db}").geturl()
    direct = mask_port(psql(direct_url, *args, **kw), urlsplit(direct_url).port)
    through = mask_port(psql(proxy.url(db=db), *args, **kw), proxy.port)
    assert through == direct
    return through


def test_psql_queries(proxy: ProxyProcess, direct_url: str) -> None:
    code, out, err = psql_both(
        proxy,
        direct_url,
        "-c",
        "SELECT i, md5(i::text), NULL AS n FROM generate_series(1, 50) i",
        "-c",
        "SELECT 'multi'; SELECT 'statement', 2",
        "-c",
        "SELECT current_user, current_database()",
    )
    assert code == 0 and not err
    assert "(50 rows)" in out and "multi" in out and re.search(r"postgres +\| postgres", out)


def test_psql_error(proxy: ProxyProcess, direct_url: str) -> None:
    code, _out, err = psql_both(proxy, direct_url, "-c", "SELECT 1/0")
    assert code == 1
    assert err == "ERROR:  division by zero\n"


def test_psql_connection_error(proxy: ProxyProcess, direct_url: str) -> None:
    """A FATAL from the upstream during startup reaches psql as from PostgreSQL."""
    code, _out, err = psql_both(proxy, direct_url, "-c", "SELECT 1", db="clients_no_such_db")
    assert code == 2
    assert 'FATAL:  database "clients_no_such_db" does not exist' in err
    assert "port PORT failed" in err


def test_psql_copy(proxy: ProxyProcess, direct_url: str, tmp: Path) -> None:
    """\\copy from a file and from stdin, \\copy to a file, and a COPY data error."""
    execute_direct(
        direct_url,
        "DROP TABLE IF EXISTS clients_psql_copy",
        "CREATE TABLE clients_psql_copy (id int PRIMARY KEY, name text, doc jsonb)",
    )
    lines = [
        f'{i},"name, {i} ""q"" é",' + ('"{""k"": ' + str(i) + '}"' if i % 3 else "")
        for i in range(1, 5001)
    ]
    (tmp / "in.csv").write_text("\n".join(lines) + "\n")
    code, out, err = psql(
        proxy.url(), "-c", "\\copy clients_psql_copy FROM 'in.csv' WITH (FORMAT csv)", cwd=tmp
    )
    assert (code, out, err) == (0, "COPY 5000\n", "")
    code, out, err = psql(
        proxy.url(), "-c", "\\copy clients_psql_copy FROM stdin", stdin="5001\tstdin\t\\N\n\\.\n"
    )
    assert (code, out, err) == (0, "COPY 1\n", "")

    query = "\\copy (SELECT * FROM clients_psql_copy ORDER BY id) TO '{}' WITH (FORMAT csv)"
    assert psql(proxy.url(), "-c", query.format("proxy.csv"), cwd=tmp)[0] == 0
    assert psql(direct_url, "-c", query.format("direct.csv"), cwd=tmp)[0] == 0
    exported = (tmp / "proxy.csv").read_text()
    assert exported == (tmp / "direct.csv").read_text()
    assert exported.startswith("\n".join(lines[:3]) + "\n")
    assert exported.count("\n") == 5001

    bad = "1\tok\t\\N\nabc\tbad\t\\N\n\\.\n"
    code, _out, err = psql_both(
        proxy, direct_url, "-c", "\\copy clients_psql_copy FROM stdin", stdin=bad
    )
    assert code == 1 and 'invalid input syntax for type integer: "abc"' in err


SCRIPT = r"""
CREATE TEMP TABLE s (id int PRIMARY KEY, v text);
INSERT INTO s VALUES (1, 'a'), (2, 'b');
SELECT * FROM s ORDER BY id;
BEGIN;
UPDATE s SET v = 'c' WHERE id = 1;
COMMIT;
SELECT count(*) AS n FROM s \gset
\echo rows: :n
DO $$ BEGIN RAISE NOTICE 'a notice %', 42; END $$;
SELECT v FROM s WHERE id = 1;
\echo before the error
INSERT INTO s VALUES (1, 'duplicate');
SELECT 'never reached';
"""


def test_psql_script_on_error_stop(proxy: ProxyProcess, direct_url: str, tmp: Path) -> None:
    script = tmp / "script.sql"
    script.write_text(SCRIPT)
    code, out, err = psql_both(proxy, direct_url, "-v", "ON_ERROR_STOP=1", "-f", str(script))
    assert code == 3
    assert "rows: 2" in out and "before the error" in out and "never reached" not in out
    assert "NOTICE:  a notice 42" in err
    assert 'duplicate key value violates unique constraint "s_pkey"' in err


@pytest.mark.parametrize(
    "meta", ["\\d+ pg_class", "\\d pg_namespace", "\\dT+ int4", "\\df+ pg_catalog.lower", "\\du"]
)
def test_psql_meta_commands(proxy: ProxyProcess, direct_url: str, meta: str) -> None:
    code, out, err = psql_both(proxy, direct_url, "-c", meta)
    assert code == 0 and not err and out.strip()


# -- pgbench --------------------------------------------------------------------

PGBENCH_DB = "clients_pgbench"


@pytest.fixture(scope="module")
def pgbench_db(pg: Any, proxy: ProxyProcess) -> Iterator[str]:
    """A database of its own, initialised by ``pgbench -i`` through the proxy."""
    statements = (
        f"DROP DATABASE IF EXISTS {PGBENCH_DB} WITH (FORCE)",
        f"CREATE DATABASE {PGBENCH_DB}",
    )
    execute_direct(pg.url, *statements)
    result = subprocess.run(
        ["pgbench", "-i", "-s", "1", "-q", proxy.url(db=PGBENCH_DB)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "done in" in result.stderr
    yield PGBENCH_DB
    execute_direct(pg.url, f"DROP DATABASE IF EXISTS {PGBENCH_DB} WITH (FORCE)")


def run_pgbench(url: str, *args: str) -> str:
    result = subprocess.run(
        ["pgbench", "-n", "-c", "4", "-j", "2", *args, url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^number of failed transactions: 0 \(", result.stdout, re.M), result.stdout
    return result.stdout


@pytest.mark.parametrize("which", ["proxy", "proxy2"])
@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_select_only(
    request: pytest.FixtureRequest, pgbench_db: str, which: str, mode: str
) -> None:
    target: ProxyProcess = request.getfixturevalue(which)
    out = run_pgbench(target.url(db=pgbench_db), "-S", "-t", "200", "-M", mode)
    assert f"query mode: {mode}" in out
    assert "number of transactions actually processed: 800/800" in out


@pytest.mark.parametrize("which", ["proxy", "proxy2"])
def test_pgbench_tpcb_timed(request: pytest.FixtureRequest, pgbench_db: str, which: str) -> None:
    """The default read-write TPC-B-like script for two seconds."""
    target: ProxyProcess = request.getfixturevalue(which)
    out = run_pgbench(target.url(db=pgbench_db), "-T", "2", "-M", "extended")
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    assert processed and int(processed[1]) > 0
