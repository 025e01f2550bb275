"""Failed and refused synced writes, end to end: vendor rejections mapped to SQLSTATEs
(README / DESIGN 5), retries, partial batch failures with compensation, statements the
proxy refuses before any API call, and the session's state after each failure. Every
test ends with the no-drift invariant (tests.synced)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from tests.support import ProxyProcess, Sandbox, run_proxy
from tests.synced import Harness, harness


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


def clear_log(hs: Harness) -> None:
    """Forget the requests the sandbox saw so far."""
    hs.sandbox.http.delete("/_sandbox/requests").raise_for_status()


def archived(hs: Harness) -> list[dict[str, Any]]:
    """The sandbox's archived (deleted) contacts."""
    response = hs.sandbox.http.get(
        "/_sandbox/objects/contacts", params={"archived": "true"}
    ).raise_for_status()
    return list(response.json()["results"])


def seed(hs: Harness, *emails: str) -> list[str]:
    """Create contacts through the proxy; their API ids, with the request log cleared."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        ids = [
            conn.execute(
                "INSERT INTO hubspot.contact (email, firstname) VALUES (%s, 'Seed') RETURNING id",
                (email,),
            ).fetchone()[0]  # type: ignore[index]
            for email in emails
        ]
    clear_log(hs)
    return ids


def statuses(hs: Harness, method: str) -> list[int]:
    """The HTTP statuses the sandbox answered to ``method`` requests, in order."""
    return [int(r["status"]) for r in hs.sandbox.requests(method) if r["status"] is not None]  # type: ignore[arg-type]


@contextmanager
def own_proxy(hs: Harness, tmp_path: Path, token: str = "sandbox-token") -> Iterator[str]:
    """A second proxy in front of the same database and sandbox, with its own connector
    state (token, learned rate limit); yields its URL."""
    config = tmp_path / "writeproxy.toml"
    config.write_text(
        f"""
[connectors.hubspot]
kind = "hubspot"
base_url = "{hs.sandbox.base_url}"
token_env = "WRITEPROXY_TEST_OWN_TOKEN"
schema = "hubspot"
backoff_base_s = 0.01
backoff_cap_s = 2
ten_secondly_wait_s = 0.05
"""
    )
    env = {"WRITEPROXY_CONFIG": str(config), "WRITEPROXY_TEST_OWN_TOKEN": token}
    with run_proxy(tmp_path, "--upstream", hs.direct_url, env=env) as proxy:
        yield proxy.url(db="synced")


def assert_usable_after(conn: psycopg.Connection[Any]) -> None:
    """After a failed autocommit statement the session is idle and works."""
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert conn.execute("SELECT 1").fetchone() == (1,)


# -- vendor rejections -> SQLSTATE ------------------------------------------------------


def test_duplicate_email_is_unique_violation(hs: Harness) -> None:
    [ada] = seed(hs, "ada@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.UniqueViolation) as info:
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('ADA@example.com')")
        diag = info.value.diag
        assert diag.sqlstate == "23505"
        assert ada in (diag.message_detail or "")
        assert (diag.schema_name, diag.table_name, diag.column_name) == (
            "hubspot",
            "contact",
            "email",
        )
        assert_usable_after(conn)
        # Updating another contact to a taken email: the local unique constraint (which
        # mirrors the vendor's) rejects it while PostgreSQL computes the new rows.
        [other] = seed(hs, "other@example.com")
        with pytest.raises(pg_errors.UniqueViolation):
            conn.execute(
                "UPDATE hubspot.contact SET email = 'ada@example.com' WHERE id = %s", (other,)
            )
        assert_usable_after(conn)
    assert hs.sandbox.vendor_requests() == []
    assert hs.local("SELECT email FROM hubspot.contact WHERE id = %s", other) == [
        ("other@example.com",)
    ]


async def test_duplicate_email_asyncpg(hs: Harness) -> None:
    [ada] = seed(hs, "ada@example.com")
    conn = await asyncpg.connect(hs.url)
    try:
        with pytest.raises(asyncpg.UniqueViolationError) as info:
            # Another case: the local constraint lets it through, the vendor (whose
            # emails are case-insensitive) rejects it with the existing id.
            await conn.execute("INSERT INTO hubspot.contact (email) VALUES ($1)", "Ada@example.com")
        assert ada in (info.value.detail or "")
        assert await conn.fetchval("SELECT count(*) FROM hubspot.contact") == 1
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("column", "value"),
    [("email", "not-an-email"), ("lifecyclestage", "no-such-stage")],
)
def test_invalid_value_is_check_violation_naming_the_column(
    hs: Harness, column: str, value: str
) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.CheckViolation) as info:
            conn.execute(
                f"INSERT INTO hubspot.contact (email, {column}) VALUES ('ok@example.com', %s)"
                if column != "email"
                else "INSERT INTO hubspot.contact (email) VALUES (%s)",
                (value,),
            )
        diag = info.value.diag
        assert (diag.sqlstate, diag.column_name, diag.table_name) == ("23514", column, "contact")
        assert value in (diag.message_primary or "")
        assert "Vendor request id" in (diag.message_detail or "")
        assert_usable_after(conn)
    assert hs.sandbox.objects() == []


async def test_invalid_email_asyncpg_update(hs: Harness) -> None:
    [ada] = seed(hs, "ada@example.com")
    conn = await asyncpg.connect(hs.url)
    try:
        with pytest.raises(asyncpg.CheckViolationError) as info:
            await conn.execute("UPDATE hubspot.contact SET email = $1 WHERE id = $2", "bad", ada)
        assert info.value.column_name == "email"
        assert await conn.fetchval("SELECT email FROM hubspot.contact") == "ada@example.com"
    finally:
        await conn.close()


def test_unknown_property_is_undefined_column(hs: Harness) -> None:
    """``user_id`` is a custom property: a fresh vendor account does not know it."""
    hs.sandbox.http.post("/_sandbox/reset").raise_for_status()  # without the custom property
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.UndefinedColumn) as info:
            conn.execute("INSERT INTO hubspot.contact (email, user_id) VALUES ('a@b.com', 7)")
        assert info.value.diag.column_name == "user_id"
        assert_usable_after(conn)
        # A write that does not name the property still works.
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('a@b.com')")
    assert len(hs.sandbox.objects()) == 1


def test_object_missing_upstream_is_no_data_found(hs: Harness) -> None:
    [ada] = seed(hs, "ada@example.com")
    hs.sandbox.http.delete(
        f"/crm/v3/objects/contacts/{ada}", headers={"Authorization": "Bearer sandbox-token"}
    ).raise_for_status()
    try:
        with psycopg.connect(hs.url, autocommit=True) as conn:
            with pytest.raises(pg_errors.NoDataFound) as info:
                conn.execute("UPDATE hubspot.contact SET firstname = 'Gone'")
            assert info.value.diag.sqlstate == "P0002"
            assert_usable_after(conn)
        assert hs.local("SELECT firstname FROM hubspot.contact") == [("Seed",)]
    finally:
        hs.local("DELETE FROM hubspot.contact RETURNING id")  # restore the no-drift state


# -- rate limits and outages ------------------------------------------------------------


def test_rate_limit_is_retried_transparently(hs: Harness) -> None:
    """A TEN_SECONDLY_ROLLING 429 is waited out and retried."""
    hs.sandbox.fault(match={"method": "POST", "path_regex": "/contacts$"}, status=429, times=2)
    with psycopg.connect(hs.url, autocommit=True) as conn:
        ident = conn.execute(
            "INSERT INTO hubspot.contact (email) VALUES ('rl@example.com') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
    assert statuses(hs, "POST") == [429, 429, 201]
    assert [o["id"] for o in hs.sandbox.objects()] == [ident]


def test_rolling_window_limit_is_paced(hs: Harness, tmp_path: Path) -> None:
    """The portal's own limit (``/_sandbox/config``): a 429 is retried once the window
    has passed, and later requests are paced; the writes succeed. (Its own proxy: the
    limit the connector learns from HubSpot's headers stays with the process.)"""
    with own_proxy(hs, tmp_path) as url, psycopg.connect(url, autocommit=True) as conn:
        hs.sandbox.configure(rate_limit={"max_requests": 1, "window_s": 1.0})
        hs.sandbox.http.get(
            "/crm/v3/objects/contacts", headers={"Authorization": "Bearer sandbox-token"}
        ).raise_for_status()  # spend the window
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('a@example.com')")
        conn.execute("UPDATE hubspot.contact SET firstname = 'A'")
    # The 429 taught the proxy the window (HubSpot's headers): the PATCH waited for it.
    assert (statuses(hs, "POST"), statuses(hs, "PATCH")) == ([429, 201], [200])
    assert len(hs.sandbox.objects()) == 1


def test_daily_limit_fails_safe_to_retry(hs: Harness) -> None:
    hs.sandbox.configure(rate_limit={"max_requests": 1, "window_s": 60, "policy": "DAILY"})
    hs.sandbox.http.get(
        "/crm/v3/objects/contacts", headers={"Authorization": "Bearer sandbox-token"}
    ).raise_for_status()
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('a@example.com')")
        diag = info.value.diag
        assert diag.sqlstate == "53400"
        assert "safe to retry" in (diag.message_hint or "")
        assert_usable_after(conn)
    assert statuses(hs, "POST") == [429]  # DAILY is not retried
    hs.sandbox.configure(rate_limit=None)
    assert hs.sandbox.objects() == []


def test_server_error_on_create_is_outcome_unknown(hs: Harness) -> None:
    """A create is never blindly retried: its outcome is reported as unknown."""
    hs.sandbox.fault(match={"method": "POST"}, status=500)
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('a@example.com')")
        diag = info.value.diag
        assert diag.sqlstate == "08007"
        assert "undoes it" in (diag.message_hint or "")
        assert_usable_after(conn)
    assert statuses(hs, "POST") == [500]
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]


def test_server_error_on_update_is_retried_or_unavailable(hs: Harness) -> None:
    """Updates are idempotent: a 500 is retried; a lasting outage fails with 57P03."""
    [ada] = seed(hs, "ada@example.com")
    hs.sandbox.fault(match={"method": "PATCH"}, status=500)
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("UPDATE hubspot.contact SET firstname = 'Once'")
        assert statuses(hs, "PATCH") == [500, 200]
        hs.sandbox.fault(match={"method": "PATCH"}, status=503, times=100)
        with pytest.raises(pg_errors.CannotConnectNow) as info:
            conn.execute("UPDATE hubspot.contact SET firstname = 'Never'")
        assert "retry" in (info.value.diag.message_hint or "")
        assert_usable_after(conn)
    hs.sandbox.http.delete("/_sandbox/faults").raise_for_status()
    assert hs.local("SELECT firstname FROM hubspot.contact WHERE id = %s", ada) == [("Once",)]


def test_locked_record_is_retried(hs: Harness) -> None:
    seed(hs, "ada@example.com")
    hs.sandbox.fault(match={"method": "PATCH"}, status=423)
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("UPDATE hubspot.contact SET lastname = 'L'")
    assert statuses(hs, "PATCH") == [423, 200]


def test_wrong_token_is_invalid_authorization(hs: Harness, tmp_path: Path) -> None:
    """A proxy whose configured token the vendor does not accept."""
    with (
        own_proxy(hs, tmp_path, token="not-the-token") as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        with pytest.raises(psycopg.Error) as info:
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('a@example.com')")
        assert info.value.diag.sqlstate == "28000"
        assert "token" in (info.value.diag.message_hint or "")
        assert_usable_after(conn)
    assert [r["status"] for r in hs.sandbox.requests("POST")] == [401]
    assert hs.sandbox.objects() == []


# -- the session after a failure ---------------------------------------------------------


def test_failure_in_transaction_block_aborts_it(hs: Harness) -> None:
    with psycopg.connect(hs.url) as conn:
        conn.execute("INSERT INTO public.users (email) VALUES ('local@example.com')")
        with pytest.raises(pg_errors.CheckViolation):
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('bad')")
        assert conn.info.transaction_status == TransactionStatus.INERROR
        with pytest.raises(pg_errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        with pytest.raises(pg_errors.InFailedSqlTransaction):
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('good@example.com')")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM public.users").fetchone() == (0,)
        conn.commit()
    assert hs.sandbox.objects() == []


def test_failure_under_savepoint_rolls_back_to_it(hs: Harness) -> None:
    with psycopg.connect(hs.url) as conn:
        conn.execute("INSERT INTO public.users (email) VALUES ('kept@example.com')")
        conn.execute("SAVEPOINT s")
        with pytest.raises(pg_errors.CheckViolation):
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('bad')")
        conn.execute("ROLLBACK TO SAVEPOINT s")
        assert conn.info.transaction_status == TransactionStatus.INTRANS
        conn.commit()
    assert hs.local("SELECT email FROM public.users") == [("kept@example.com",)]


def test_pipeline_skips_until_sync_after_failure(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.CheckViolation), conn.pipeline():
            conn.execute("INSERT INTO hubspot.contact (email) VALUES (%s)", ("bad",))
            conn.execute("INSERT INTO public.users (email) VALUES (%s)", ("skipped@x.com",))
            conn.execute("INSERT INTO hubspot.contact (email) VALUES (%s)", ("skip@x.com",))
        assert_usable_after(conn)
        with conn.pipeline() as pipeline:
            conn.execute("INSERT INTO public.users (email) VALUES (%s)", ("first@x.com",))
            pipeline.sync()
            with pytest.raises(pg_errors.CheckViolation):
                conn.execute("INSERT INTO hubspot.contact (email) VALUES (%s)", ("bad",))
                pipeline.sync()
            conn.execute("INSERT INTO hubspot.contact (email) VALUES (%s)", ("after@x.com",))
    assert hs.local("SELECT email FROM public.users") == [("first@x.com",)]
    assert [o["properties"]["email"] for o in hs.sandbox.objects()] == ["after@x.com"]


async def test_asyncpg_failure_in_transaction(hs: Harness) -> None:
    conn = await asyncpg.connect(hs.url)
    try:
        tx = conn.transaction()
        await tx.start()
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO hubspot.contact (email) VALUES ($1)", "bad")
        with pytest.raises(asyncpg.InFailedSQLTransactionError):
            await conn.fetchval("SELECT 1")
        await tx.rollback()
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()


async def test_asyncpg_executemany_is_atomic(hs: Harness) -> None:
    """PostgreSQL applies none of an executemany batch when one row fails."""
    conn = await asyncpg.connect(hs.url)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.executemany(
                "INSERT INTO hubspot.contact (email) VALUES ($1)",
                [("a@example.com",), ("b@example.com",), ("bad",), ("c@example.com",)],
            )
        assert await conn.fetchval("SELECT count(*) FROM hubspot.contact") == 0
    finally:
        await conn.close()


async def test_asyncpg_executemany_commits_all_at_sync(hs: Harness) -> None:
    conn = await asyncpg.connect(hs.url)
    try:
        await conn.executemany(
            "INSERT INTO hubspot.contact (email) VALUES ($1)",
            [(f"m{i}@example.com",) for i in range(5)],
        )
        assert await conn.fetchval("SELECT count(*) FROM hubspot.contact") == 5
        # The block the proxy opened for the batch is closed: autocommit again.
        assert not conn.is_in_transaction()
    finally:
        await conn.close()
    assert len(hs.sandbox.objects()) == 5


def test_pipeline_of_synced_writes_is_one_transaction(hs: Harness) -> None:
    """psycopg pipeline mode: statements up to a Sync commit or fail together."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.UniqueViolation), conn.pipeline():
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('p1@example.com')")
            conn.execute("INSERT INTO public.users (email) VALUES ('p1@example.com')")
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('p1@example.com')")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT count(*) FROM public.users").fetchone() == (0,)
        with conn.pipeline():
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('p2@example.com')")
            conn.execute("INSERT INTO public.users (email) VALUES ('p2@example.com')")
        assert conn.execute("SELECT count(*) FROM public.users").fetchone() == (1,)
    assert [o["properties"]["email"] for o in hs.sandbox.objects()] == ["p2@example.com"]


# -- partial batch failures ---------------------------------------------------------------


def test_multi_row_insert_with_one_invalid_row_writes_nothing(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.CheckViolation) as info:
            conn.execute(
                "INSERT INTO hubspot.contact (email) VALUES "
                "('a@example.com'), ('bad'), ('c@example.com')"
            )
        assert "Failed row: 2" in (info.value.diag.message_detail or "")
        assert_usable_after(conn)
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]
    assert hs.sandbox.objects() == []
    assert len(archived(hs)) == 2  # created by the batch, then compensated


def test_failure_in_second_batch_compensates_the_first(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.CheckViolation) as info:
            conn.execute(
                "INSERT INTO hubspot.contact (email) SELECT CASE WHEN g = 120 THEN 'bad' "
                "ELSE 'c' || g || '@example.com' END FROM generate_series(1, 150) g"
            )
        assert "Failed row: 120" in (info.value.diag.message_detail or "")
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]
    assert hs.sandbox.objects() == []
    assert len(archived(hs)) == 149
    creates = hs.sandbox.requests("POST", "/batch/create")
    assert [len(c["body"]["inputs"]) for c in creates] == [100, 50]  # type: ignore[index]


def test_failure_in_second_update_batch_restores_the_first(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) "
            "SELECT 'u' || g || '@example.com', 'Old' FROM generate_series(1, 150) g"
        )
        with pytest.raises(pg_errors.CheckViolation):
            conn.execute(
                "UPDATE hubspot.contact SET firstname = 'New', email = CASE WHEN email = "
                "'u120@example.com' THEN 'bad' ELSE email END"
            )
    assert {o["properties"]["firstname"] for o in hs.sandbox.objects()} == {"Old"}
    assert hs.local("SELECT DISTINCT firstname FROM hubspot.contact") == [("Old",)]


# -- refused before any API call -----------------------------------------------------------

REFUSED = [
    "TRUNCATE hubspot.contact",
    "TRUNCATE public.users, hubspot.contact CASCADE",
    "UPDATE hubspot.contact SET id = '1'",
    "UPDATE hubspot.contact SET createdate = now()",
    "INSERT INTO hubspot.contact (email, createdate) VALUES ('a@example.com', now())",
    "INSERT INTO hubspot.contact (email) VALUES ('a@example.com') "
    "ON CONFLICT (email) DO UPDATE SET id = EXCLUDED.id",
    "INSERT INTO hubspot.contact (email) VALUES ('a@example.com') ON CONFLICT (id) DO NOTHING",
    "INSERT INTO hubspot.contact (email) VALUES ('a@example.com') "
    "ON CONFLICT ON CONSTRAINT contact_pkey DO NOTHING",
    "ALTER TABLE hubspot.contact ADD COLUMN extra text",
    "ALTER TABLE hubspot.contact RENAME TO contacts",
    "DROP TABLE hubspot.contact",
    "WITH c AS (INSERT INTO hubspot.contact (email) VALUES ('a@example.com') RETURNING id) "
    "SELECT * FROM c",
    "WITH d AS (DELETE FROM hubspot.contact RETURNING email) "
    "INSERT INTO public.users (email) SELECT email FROM d",
    "WITH d AS (UPDATE hubspot.deal SET dealname = 'x' RETURNING dealname) "
    "INSERT INTO hubspot.contact (email) SELECT dealname FROM d",
    "SELECT 1; INSERT INTO hubspot.contact (email) VALUES ('a@example.com')",
    "INSERT INTO hubspot.contact (email) VALUES ('a@example.com'); SELECT 1",
    "PREPARE ins AS INSERT INTO hubspot.contact (email) VALUES ($1)",
    "EXPLAIN ANALYZE INSERT INTO hubspot.contact (email) VALUES ('a@example.com')",
    "MERGE INTO hubspot.contact c USING public.users u ON u.email = c.email "
    "WHEN NOT MATCHED THEN INSERT (email) VALUES (u.email)",
    "UPDATE hubspot.associations_contact_deal SET labels = '{x}'",
    "INSERT INTO hubspot.associations_contact_deal (contact_id, deal_id) VALUES ('1', '2') "
    "ON CONFLICT DO NOTHING",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_refused_with_feature_not_supported(hs: Harness, sql: str) -> None:
    seed(hs, "seed@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.FeatureNotSupported) as info:
            conn.execute(sql)
        assert info.value.diag.message_hint
        assert_usable_after(conn)
    with psycopg.connect(hs.url) as conn:
        conn.execute("INSERT INTO public.users (email) VALUES ('tx@example.com')")
        with pytest.raises(pg_errors.FeatureNotSupported):
            conn.execute(sql)
        assert conn.info.transaction_status == TransactionStatus.INERROR
        with pytest.raises(pg_errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
    assert hs.sandbox.vendor_requests() == []
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(1,)]
    assert hs.local("SELECT count(*) FROM public.users") == [(0,)]
    assert hs.local("SELECT to_regclass('hubspot.contact') IS NOT NULL") == [(True,)]


def test_copy_from_stdin_is_refused(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with (
            pytest.raises(pg_errors.FeatureNotSupported) as info,
            conn.cursor().copy("COPY hubspot.contact (email) FROM STDIN") as copy,
        ):
            copy.write_row(("a@example.com",))
        assert info.value.diag.message_hint
        assert_usable_after(conn)
        # COPY ... TO (a read) is not refused.
        with conn.cursor().copy("COPY hubspot.contact TO STDOUT") as copy:
            assert list(copy) == []
    assert hs.sandbox.vendor_requests() == []


async def test_refused_in_extended_protocol(hs: Harness) -> None:
    [ada] = seed(hs, "ada@example.com")
    conn = await asyncpg.connect(hs.url)
    try:
        with pytest.raises(asyncpg.FeatureNotSupportedError):
            await conn.execute("UPDATE hubspot.contact SET id = $1 WHERE id = $2", "9", ada)
        with pytest.raises(asyncpg.FeatureNotSupportedError):
            await conn.fetch(
                "INSERT INTO hubspot.contact (id, email) VALUES ($1, $2)", "9", "x@y.z"
            )
        assert await conn.fetchval("SELECT id FROM hubspot.contact") == ada
    finally:
        await conn.close()
    assert hs.sandbox.vendor_requests() == []


def test_client_dropped_inside_a_pipeline_compensates(hs: Harness) -> None:
    """A pipeline's synced write is applied in a block the proxy opened; when the client
    disappears before its Sync, PostgreSQL rolls the block back and the proxy archives
    the contact it created."""
    conn = psycopg.connect(hs.url, autocommit=True)
    pgconn = conn.pgconn
    pgconn.enter_pipeline_mode()
    pgconn.send_query_params(
        b"INSERT INTO hubspot.contact (email) VALUES ($1) RETURNING id", [b"gone@example.com"]
    )
    pgconn.send_flush_request()
    pgconn.flush()
    deadline = time.monotonic() + 10
    while pgconn.is_busy() and time.monotonic() < deadline:
        pgconn.consume_input()
        time.sleep(0.01)
    result = pgconn.get_result()
    assert result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK
    assert len(hs.sandbox.objects()) == 1  # created at the vendor, not yet committed
    conn.close()  # no Sync
    deadline = time.monotonic() + 10
    while hs.sandbox.objects() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hs.sandbox.objects() == []
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]
