"""Pass-through is invisible: the same client code, run directly against PostgreSQL
and through the proxy, must observe the same results, errors, notices and state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.support import ProxyProcess

TYPES_QUERY = """
SELECT 1::int2, 2::int4, 3::int8, 1.5::float4, 2.25::float8, 12345.6789::numeric,
       'text é'::text, 'c'::char(3), true, NULL::int, '\\x00ff10'::bytea,
       '2024-02-29'::date, '2024-02-29 12:34:56.789+02'::timestamptz, '1 day 2 hours'::interval,
       '{1,2,NULL}'::int[], '{"a": [1, 2]}'::jsonb, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
       '192.168.0.1/24'::inet, int4range(1, 10)
"""


def both(proxy: ProxyProcess, direct_url: str, check: Callable[[str], Any]) -> Any:
    """Run ``check`` directly and through the proxy; they must observe the same."""
    direct = check(direct_url)
    through = check(proxy.url())
    assert through == direct
    return through


def error_fields(exc: psycopg.Error) -> tuple[Any, ...]:
    d = exc.diag
    return (
        d.sqlstate,
        d.severity,
        d.message_primary,
        d.message_detail,
        d.message_hint,
        d.statement_position,
        d.schema_name,
        d.table_name,
        d.column_name,
        d.constraint_name,
    )


@pytest.mark.parametrize("binary", [False, True])
def test_results_text_and_binary(proxy: ProxyProcess, direct_url: str, binary: bool) -> None:
    def check(url: str) -> Any:
        with psycopg.connect(url) as conn:
            cur = conn.cursor(binary=binary)
            rows = cur.execute(TYPES_QUERY).fetchall()
            params = cur.execute(
                "SELECT %s::int + 1, %s::text || 'x', %s::bytea, %s::jsonb",
                (41, "y", b"\x00\x01", psycopg.types.json.Jsonb({"k": 1})),
            ).fetchall()
            return rows, params, [c.name for c in cur.description or []]

    _rows, params, _ = both(proxy, direct_url, check)
    assert params == [(42, "yx", b"\x00\x01", {"k": 1})]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1/0",
        "SELEC 1",
        "SELECT * FROM no_such_table",
        "SELECT nocolumn FROM pg_class",
        "INSERT INTO passthrough_unique VALUES (1), (1)",
        "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE='22023', MESSAGE='custom', "
        "DETAIL='some detail', HINT='a hint', COLUMN='c', TABLE='t', SCHEMA='s'; END $$",
    ],
)
def test_errors_identical(proxy: ProxyProcess, direct_url: str, statement: str) -> None:
    with psycopg.connect(direct_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS passthrough_unique (id int PRIMARY KEY)")
        conn.execute("TRUNCATE passthrough_unique")

    def check(url: str) -> Any:
        with psycopg.connect(url) as conn:
            with pytest.raises(psycopg.Error) as info:
                conn.execute(statement)
            status = conn.info.transaction_status
            conn.rollback()
            # The session stays usable after an error.
            return error_fields(info.value), status, conn.execute("SELECT 7").fetchone()

    fields, status, after = both(proxy, direct_url, check)
    assert fields[0] is not None and after == (7,)
    assert status == psycopg.pq.TransactionStatus.INERROR


def test_notices(proxy: ProxyProcess, direct_url: str) -> None:
    def check(url: str) -> Any:
        notices: list[tuple[str | None, str | None]] = []
        with psycopg.connect(url, autocommit=True) as conn:
            conn.add_notice_handler(lambda d: notices.append((d.severity, d.message_primary)))
            conn.execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful'; END $$")
            conn.execute("DROP TABLE IF EXISTS surely_missing_table")
        return notices

    notices = both(proxy, direct_url, check)
    assert ("NOTICE", "hello 42") in notices and ("WARNING", "careful") in notices


def test_listen_notify(proxy: ProxyProcess, direct_url: str) -> None:
    with psycopg.connect(proxy.url(), autocommit=True) as listener:
        listener.execute("LISTEN proxy_channel")
        with psycopg.connect(direct_url, autocommit=True) as sender:
            sender.execute("NOTIFY proxy_channel, 'from direct'")
        with psycopg.connect(proxy.url(), autocommit=True) as sender:
            sender.execute("SELECT pg_notify('proxy_channel', 'through proxy')")
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=5, stop_after=2)]
    assert got == [("proxy_channel", "from direct"), ("proxy_channel", "through proxy")]


def test_copy_in_and_out(proxy: ProxyProcess, direct_url: str) -> None:
    rows = [(i, f"name {i}", None if i % 3 else "x\ty\n") for i in range(5000)]
    with psycopg.connect(direct_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS copy_target")
        conn.execute("CREATE TABLE copy_target (id int, name text, note text)")
    with psycopg.connect(proxy.url(), autocommit=True) as conn:
        with conn.cursor().copy("COPY copy_target FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with (
            pytest.raises(psycopg.errors.InvalidTextRepresentation),
            conn.cursor().copy("COPY copy_target (id) FROM STDIN") as copy,
        ):
            copy.write(b"not a number\n")

    def check(url: str) -> Any:
        with (
            psycopg.connect(url) as conn,
            conn.cursor() as cur,
            cur.copy(
                "COPY (SELECT * FROM copy_target ORDER BY id) TO STDOUT (FORMAT binary)"
            ) as copy,
        ):
            copy.set_types(["int4", "text", "text"])
            return list(copy.rows())

    assert both(proxy, direct_url, check) == rows


def test_session_state_and_parameter_status(proxy: ProxyProcess, direct_url: str) -> None:
    def check(url: str) -> Any:
        with psycopg.connect(
            url, application_name="compat-test", options="-c search_path=pg_catalog,public"
        ) as conn:
            seen = [conn.info.parameter_status("application_name")]
            conn.execute("SET application_name = 'renamed'")
            seen.append(conn.info.parameter_status("application_name"))
            seen.append(conn.execute("SHOW search_path").fetchone())
            conn.execute("SET search_path = information_schema")
            seen.append(conn.execute("SELECT count(*) > 0 FROM tables").fetchone())
            for name in (
                "server_version",
                "client_encoding",
                "DateStyle",
                "TimeZone",
                "integer_datetimes",
                "standard_conforming_strings",
            ):
                seen.append(conn.info.parameter_status(name))
            return seen

    seen = both(proxy, direct_url, check)
    assert seen[:3] == ["compat-test", "renamed", ("pg_catalog,public",)]


def test_transactions_and_savepoints(proxy: ProxyProcess, direct_url: str) -> None:
    with psycopg.connect(direct_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS tx_test (id int)")

    def check(url: str) -> Any:
        statuses = []
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE tx_test")
            conn.execute("BEGIN")
            statuses.append(conn.info.transaction_status)
            conn.execute("INSERT INTO tx_test VALUES (1)")
            conn.execute("SAVEPOINT a")
            conn.execute("INSERT INTO tx_test VALUES (2)")
            conn.execute("ROLLBACK TO SAVEPOINT a")
            conn.execute("COMMIT")
            statuses.append(conn.info.transaction_status)
            conn.execute("BEGIN")
            conn.execute("INSERT INTO tx_test VALUES (3)")
            conn.execute("ROLLBACK")
            rows = conn.execute("SELECT id FROM tx_test ORDER BY id").fetchall()
        return statuses, rows

    _statuses, rows = both(proxy, direct_url, check)
    assert rows == [(1,)]


def test_pipeline_mode(proxy: ProxyProcess, direct_url: str) -> None:
    def check(url: str) -> Any:
        with psycopg.connect(url, autocommit=True) as conn:
            with conn.pipeline() as pipeline:
                cursors = [conn.execute("SELECT %s::int * 2", (i,)) for i in range(200)]
                pipeline.sync()
            results = [c.fetchone() for c in cursors]
            with pytest.raises(psycopg.errors.DivisionByZero), conn.pipeline():
                conn.execute("SELECT 1/0")
                conn.execute("SELECT 2")
            return results, conn.execute("SELECT 'ok'").fetchone()

    results, ok = both(proxy, direct_url, check)
    assert results == [(i * 2,) for i in range(200)] and ok == ("ok",)


def test_prepared_statements_extended_protocol(proxy: ProxyProcess, direct_url: str) -> None:
    def check(url: str) -> Any:
        with psycopg.connect(url, prepare_threshold=0) as conn:
            out = [conn.execute("SELECT %s::int + %s::int", (i, i)).fetchone() for i in range(20)]
            conn.execute(sql.SQL("PREPARE named_stmt AS SELECT $1::text || '!'"))
            out.append(conn.execute("EXECUTE named_stmt('hi')").fetchone())
            conn.execute("DEALLOCATE named_stmt")
            return out

    out = both(proxy, direct_url, check)
    assert out[-1] == ("hi!",)


def test_concurrent_sessions_are_isolated(proxy: ProxyProcess) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with psycopg.connect(proxy.url()) as conn:
                for i in range(50):
                    assert conn.execute("SELECT %s::int", (n * 1000 + i,)).fetchone() == (
                        n * 1000 + i,
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
