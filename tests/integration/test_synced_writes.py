"""Synced writes end to end: real PostgreSQL, the real proxy, the HubSpot sandbox over
HTTP, psycopg and asyncpg. After every test the local synced tables and the sandbox
must hold the same objects (tests.synced.assert_no_drift)."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import psycopg
import pytest

from tests.support import ProxyProcess, Sandbox
from tests.synced import Harness, harness


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


def test_insert_simple_protocol_returns_api_id(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) VALUES ('ada@example.com', 'Ada') "
            "RETURNING id, email, createdate IS NOT NULL AS stamped"
        )
        row = cur.fetchone()
        assert cur.statusmessage == "INSERT 0 1"
    [obj] = hs.sandbox.objects()
    assert row == (obj["id"], "ada@example.com", True)
    assert hs.local("SELECT firstname FROM hubspot.contact") == [("Ada",)]


@pytest.mark.parametrize("binary", [False, True])
def test_insert_extended_protocol_parameters(hs: Harness, binary: bool) -> None:
    with psycopg.connect(hs.url, autocommit=True, prepare_threshold=0) as conn:
        cur = conn.cursor(binary=binary)
        for i in range(3):
            cur.execute(
                "INSERT INTO hubspot.contact (email, firstname, user_id) VALUES (%s, %s, %s) "
                "RETURNING id, user_id",
                (f"p{i}@example.com", f"P{i}", i),
            )
            ident, user_id = cur.fetchone()  # type: ignore[misc]
            assert user_id == i and ident.isdigit()
    assert len(hs.sandbox.objects()) == 3


def test_signup_transaction_commits_both(hs: Harness) -> None:
    with psycopg.connect(hs.url) as conn:
        user_id = conn.execute(
            "INSERT INTO public.users (email, first_name) VALUES (%s, %s) RETURNING id",
            ("ada@example.com", "Ada"),
        ).fetchone()[0]  # type: ignore[index]
        contact_id = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname, user_id) VALUES (%s, %s, %s) "
            "RETURNING id",
            ("ada@example.com", "Ada", user_id),
        ).fetchone()[0]  # type: ignore[index]
        assert conn.execute(
            "SELECT count(*) FROM hubspot.contact WHERE id = %s", (contact_id,)
        ).fetchone() == (1,)
        conn.commit()
    assert hs.local("SELECT id, user_id FROM hubspot.contact") == [(contact_id, user_id)]


def test_duplicate_email_is_postgresqls_own_unique_violation_before_any_api_call(
    hs: Harness,
) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('dup@example.com')")
        hs.sandbox.http.delete("/_sandbox/requests")
        with pytest.raises(psycopg.errors.UniqueViolation) as info:
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('dup@example.com')")
        assert hs.sandbox.vendor_requests() == []  # PostgreSQL decided first
        diag = info.value.diag
        assert diag.message_detail == "Key (email)=(dup@example.com) already exists."
        assert (diag.schema_name, diag.table_name) == ("hubspot", "contact")
        # ORMs (Prisma's P2002 target) read the constraint, as PostgreSQL names it.
        assert diag.constraint_name == "contact_email_key"
        # The session is usable afterwards, as after any failed autocommit statement.
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with psycopg.connect(hs.url) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('dup@example.com')")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()


def test_update_and_delete(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        ident = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) "
            "VALUES ('u@example.com', 'U') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        hs.sandbox.http.delete("/_sandbox/requests")
        cur = conn.execute(
            "UPDATE hubspot.contact SET lastname = %s WHERE email = %s RETURNING *",
            ("Upd", "u@example.com"),
        )
        assert cur.statusmessage == "UPDATE 1"
        assert cur.fetchone()[3] == "Upd"  # type: ignore[index]
        [patch] = hs.sandbox.vendor_requests()
        assert patch["body"] == {"properties": {"lastname": "Upd"}}  # only what changed
        assert (
            conn.execute("UPDATE hubspot.contact SET lastname = 'x' WHERE false").statusmessage
            == "UPDATE 0"
        )
        assert len(hs.sandbox.vendor_requests()) == 1  # no API call for no rows
        cur = conn.execute("DELETE FROM hubspot.contact WHERE id = %s RETURNING email", (ident,))
        assert (cur.statusmessage, cur.fetchall()) == ("DELETE 1", [("u@example.com",)])
    assert hs.sandbox.objects() == []


async def test_asyncpg_prepared_insert(hs: Harness) -> None:
    conn = await asyncpg.connect(hs.url)
    try:
        stmt = await conn.prepare(
            "INSERT INTO hubspot.contact (email, firstname) VALUES ($1, $2) RETURNING id, email"
        )
        rows = [await stmt.fetchrow(f"a{i}@example.com", f"A{i}") for i in range(3)]
        assert [r["email"] for r in rows] == [f"a{i}@example.com" for i in range(3)]
        with pytest.raises(asyncpg.UniqueViolationError):
            await stmt.fetchrow("a0@example.com", "again")
        assert await conn.fetchval("SELECT count(*) FROM hubspot.contact") == 3
    finally:
        await conn.close()


def test_writes_through_a_view_of_a_synced_table_are_refused(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('v@example.com')")
        hs.sandbox.http.delete("/_sandbox/requests")
        assert conn.execute("SELECT email FROM contact_emails").fetchall() == [("v@example.com",)]
        for statement in (
            "INSERT INTO contact_emails (id, email) VALUES ('1', 'w@example.com')",
            "UPDATE public.contact_emails SET email = 'x@example.com'",
            "DELETE FROM contact_emails",
        ):
            with pytest.raises(psycopg.errors.FeatureNotSupported) as info:
                conn.execute(statement)
            assert "hubspot.contact" in str(info.value)
            assert info.value.diag.message_hint
    assert hs.sandbox.vendor_requests() == []


def test_unnamed_statement_reused_across_synced_executions(hs: Harness) -> None:
    """The proxy's own statements must not replace the client's unnamed statement."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        pgconn = conn.pgconn
        prepared = pgconn.prepare(
            b"", b"INSERT INTO hubspot.contact (email) VALUES ($1) RETURNING email"
        )
        assert prepared.status == psycopg.pq.ExecStatus.COMMAND_OK
        for email in (b"one@example.com", b"two@example.com"):
            result = pgconn.exec_prepared(b"", [email])
            assert result.status == psycopg.pq.ExecStatus.TUPLES_OK, result.error_message
            assert result.get_value(0, 0) == email
    assert sorted(o["properties"]["email"] for o in hs.sandbox.objects()) == [  # type: ignore[index]
        "one@example.com",
        "two@example.com",
    ]
