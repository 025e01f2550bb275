"""The statement forms a synced write may take, end to end: real PostgreSQL, the real
proxy, the HubSpot sandbox over HTTP, psycopg (simple and extended protocol, text and
binary) and asyncpg. Every test ends with the no-drift invariant (tests.synced)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import psycopg
import pytest

from tests.support import ProxyProcess, Sandbox
from tests.synced import Harness, harness

OLD = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


def clear_log(hs: Harness) -> None:
    """Forget the requests the sandbox saw so far."""
    hs.sandbox.http.delete("/_sandbox/requests").raise_for_status()


def archived(hs: Harness, object_type: str = "contacts") -> list[dict[str, Any]]:
    """The sandbox's archived (deleted) objects."""
    response = hs.sandbox.http.get(
        f"/_sandbox/objects/{object_type}", params={"archived": "true"}
    ).raise_for_status()
    return list(response.json()["results"])


def remote(hs: Harness, object_type: str = "contacts") -> dict[str, dict[str, Any]]:
    """The sandbox's live objects by id."""
    return {str(obj["id"]): obj for obj in hs.sandbox.objects(object_type)}


def calls(hs: Harness, path_part: str) -> list[dict[str, Any]]:
    """The vendor API requests whose path contains ``path_part``."""
    return [r for r in hs.sandbox.vendor_requests() if path_part in str(r["path"])]


def seed(hs: Harness, *emails: str) -> list[str]:
    """Create contacts through the proxy; their API ids in order."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        ids = [
            conn.execute(
                "INSERT INTO hubspot.contact (email, firstname) VALUES (%s, %s) RETURNING id",
                (email, email.split("@")[0].title()),
            ).fetchone()[0]  # type: ignore[index]
            for email in emails
        ]
    clear_log(hs)
    return ids


def seed_users(hs: Harness, *rows: tuple[str, str]) -> list[int]:
    """Local app users (not synced): written through the proxy, straight to Postgres."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        return [
            conn.execute(
                "INSERT INTO public.users (email, first_name) VALUES (%s, %s) RETURNING id", row
            ).fetchone()[0]  # type: ignore[index]
            for row in rows
        ]


# -- INSERT --------------------------------------------------------------------------


def test_insert_values_one_and_many_rows(hs: Harness) -> None:
    """One row uses the single-object endpoint, several rows one batch create."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute("INSERT INTO hubspot.contact (email) VALUES ('one@example.com')")
        assert (cur.statusmessage, cur.rowcount) == ("INSERT 0 1", 1)
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) VALUES "
            "('a@example.com', 'A'), ('b@example.com', 'B'), ('c@example.com', 'C') "
            "RETURNING id, email"
        )
        rows = cur.fetchall()
        assert (cur.statusmessage, cur.rowcount) == ("INSERT 0 3", 3)
    assert [email for _, email in rows] == ["a@example.com", "b@example.com", "c@example.com"]
    objects = remote(hs)
    assert len(objects) == 4
    assert all(objects[ident]["properties"]["email"] == email for ident, email in rows)
    assert [(r["method"], r["path"]) for r in hs.sandbox.vendor_requests()] == [
        ("POST", "/crm/v3/objects/contacts"),
        ("POST", "/crm/v3/objects/contacts/batch/create"),
    ]


@pytest.mark.parametrize("binary", [False, True])
def test_insert_defaults_expressions_and_parameters(hs: Harness, binary: bool) -> None:
    """DEFAULT, functions of ``$n`` and concatenation are evaluated by PostgreSQL, with the
    parameters in text or binary format; the API's normalised value comes back."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.cursor(binary=binary)
        cur.execute(
            "INSERT INTO hubspot.contact (email, firstname, lastname, company, user_id) "
            "VALUES (lower(%s), 'x' || %s, DEFAULT, upper(%s), %s + 1) "
            "RETURNING email, firstname, lastname, company, user_id",
            ("Ada@Example.COM", "Ada", "acme", 41),
        )
        assert cur.fetchone() == ("ada@example.com", "xAda", None, "ACME", 42)
        assert cur.statusmessage == "INSERT 0 1"
        # The sandbox lower-cases emails; the local row holds the API's value.
        cur.execute(
            "INSERT INTO hubspot.contact (email) VALUES (%s) RETURNING email",
            ("Grace@Example.com",),
        )
        assert cur.fetchone() == ("grace@example.com",)
    [ada] = [o for o in hs.sandbox.objects() if o["properties"]["email"] == "ada@example.com"]
    assert ada["properties"]["firstname"] == "xAda"
    assert ada["properties"]["user_id"] == "42"
    assert "lastname" not in ada["properties"]


async def test_insert_asyncpg_parameters_and_executemany(hs: Harness) -> None:
    """asyncpg: ``$n`` parameters (binary), a DEFAULT VALUES-style row, executemany."""
    conn = await asyncpg.connect(hs.url)
    try:
        row = await conn.fetchrow(
            "INSERT INTO hubspot.contact (email, firstname, user_id) "
            "VALUES (lower($1), 'x' || $2, $3) RETURNING id, email, firstname, user_id",
            "Lin@Example.com",
            "Lin",
            7,
        )
        assert row is not None
        assert (row["email"], row["firstname"], row["user_id"]) == ("lin@example.com", "xLin", 7)
        status = await conn.execute(
            "INSERT INTO hubspot.contact (email) VALUES ($1), ($2)",
            "m1@example.com",
            "m2@example.com",
        )
        assert status == "INSERT 0 2"
        await conn.executemany(
            "INSERT INTO hubspot.contact (email, firstname) VALUES ($1, $2)",
            [(f"many{i}@example.com", f"M{i}") for i in range(4)],
        )
        assert await conn.fetchval("SELECT count(*) FROM hubspot.contact") == 7
    finally:
        await conn.close()
    assert len(hs.sandbox.objects()) == 7


def test_insert_select_from_local_table(hs: Harness) -> None:
    """INSERT ... SELECT from an ordinary table: one API call for all selected rows."""
    ids = seed_users(hs, ("u1@example.com", "Uma"), ("u2@example.com", "Ugo"))
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname, user_id) "
            "SELECT email, first_name, id FROM public.users ORDER BY id "
            "RETURNING email, firstname, user_id"
        )
        assert sorted(cur.fetchall()) == [
            ("u1@example.com", "Uma", ids[0]),
            ("u2@example.com", "Ugo", ids[1]),
        ]
        assert cur.statusmessage == "INSERT 0 2"
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email) SELECT email FROM public.users WHERE false"
        )
        assert (cur.statusmessage, cur.rowcount) == ("INSERT 0 0", 0)
    assert len(calls(hs, "/batch/create")) == 1
    assert len(hs.sandbox.objects()) == 2


def test_insert_with_read_only_cte(hs: Harness) -> None:
    """A WITH query that only reads is evaluated by PostgreSQL like any other source."""
    seed_users(hs, ("w@example.com", "Wes"))
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "WITH src AS (SELECT email, first_name FROM public.users) "
            "INSERT INTO hubspot.contact (email, firstname) SELECT email, first_name FROM src "
            "RETURNING firstname"
        )
        assert (cur.statusmessage, cur.fetchall()) == ("INSERT 0 1", [("Wes",)])
        cur = conn.execute(
            "WITH w AS (SELECT 'w@example.com' AS e) "
            "UPDATE hubspot.contact SET lastname = 'W' FROM w WHERE email = w.e"
        )
        assert cur.statusmessage == "UPDATE 1"
    assert hs.sandbox.objects()[0]["properties"]["lastname"] == "W"


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO hubspot.contact (id, email) VALUES ('999', 'id@example.com')",
        "INSERT INTO hubspot.contact VALUES ('999', 'id@example.com')",
        "INSERT INTO hubspot.contact (id, email) SELECT '999', 'id@example.com'",
    ],
)
def test_insert_with_client_id_is_refused(hs: Harness, sql: str) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported) as info:
            conn.execute(sql)
        assert "id" in str(info.value) and info.value.diag.message_hint
        assert conn.execute("SELECT count(*) FROM hubspot.contact").fetchone() == (0,)
    assert hs.sandbox.vendor_requests() == []


# -- UPDATE --------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True])
def test_update_with_parameters_sends_only_changed_properties(hs: Harness, binary: bool) -> None:
    ada, grace = seed(hs, "ada@example.com", "grace@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.cursor(binary=binary)
        cur.execute(
            "UPDATE hubspot.contact SET lastname = %s, firstname = firstname, phone = NULL "
            "WHERE email = %s RETURNING id, lastname",
            ("Lovelace", "ada@example.com"),
        )
        assert cur.fetchall() == [(ada, "Lovelace")]
        assert (cur.statusmessage, cur.rowcount) == ("UPDATE 1", 1)
    [patch] = hs.sandbox.vendor_requests()
    assert (patch["method"], patch["path"]) == ("PATCH", f"/crm/v3/objects/contacts/{ada}")
    assert patch["body"] == {"properties": {"lastname": "Lovelace"}}
    assert remote(hs)[grace]["properties"].get("lastname") is None


def test_update_to_unchanged_values_makes_no_api_call(hs: Harness) -> None:
    seed(hs, "ada@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute("UPDATE hubspot.contact SET firstname = 'Ada' RETURNING firstname")
        assert (cur.statusmessage, cur.fetchall()) == ("UPDATE 1", [("Ada",)])
        cur = conn.execute(
            "UPDATE hubspot.contact SET firstname = %s WHERE email = %s", ("X", "nobody@x.com")
        )
        assert (cur.statusmessage, cur.rowcount) == ("UPDATE 0", 0)
    assert hs.sandbox.vendor_requests() == []


def test_update_with_subquery_in_where(hs: Harness) -> None:
    ids = seed(hs, "a@acme.com", "b@acme.com", "c@other.com")
    seed_users(hs, ("a@acme.com", "A"), ("b@acme.com", "B"), ("c@other.com", "C"))
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "UPDATE hubspot.contact SET company = 'Acme' WHERE email IN "
            "(SELECT email FROM public.users WHERE email LIKE %s) RETURNING id",
            ("%@acme.com",),
        )
        assert sorted(r[0] for r in cur.fetchall()) == sorted(ids[:2])
        assert cur.statusmessage == "UPDATE 2"
    [batch] = calls(hs, "/batch/update")
    assert sorted(i["id"] for i in batch["body"]["inputs"]) == sorted(ids[:2])  # type: ignore[index]
    assert all(i["properties"] == {"company": "Acme"} for i in batch["body"]["inputs"])  # type: ignore[index]
    assert remote(hs)[ids[2]]["properties"].get("company") is None


def test_update_from_local_table(hs: Harness) -> None:
    """UPDATE ... FROM joins an ordinary table; RETURNING names the target's alias."""
    ids = seed(hs, "a@example.com", "b@example.com")
    users = seed_users(hs, ("a@example.com", "Alice"), ("b@example.com", "Bob"))
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "UPDATE hubspot.contact AS c SET firstname = u.first_name, user_id = u.id "
            "FROM public.users u WHERE u.email = c.email RETURNING c.id, c.firstname, c.user_id"
        )
        assert sorted(cur.fetchall()) == sorted(
            [(ids[0], "Alice", users[0]), (ids[1], "Bob", users[1])]
        )
        assert cur.statusmessage == "UPDATE 2"
    objects = remote(hs)
    assert objects[ids[0]]["properties"]["firstname"] == "Alice"
    assert objects[ids[1]]["properties"]["user_id"] == str(users[1])


async def test_update_asyncpg_status(hs: Harness) -> None:
    seed(hs, "a@example.com", "b@example.com")
    conn = await asyncpg.connect(hs.url)
    try:
        assert await conn.execute("UPDATE hubspot.contact SET phone = $1", "+1 555") == "UPDATE 2"
        assert (
            await conn.execute("UPDATE hubspot.contact SET phone = $1 WHERE false", "x")
            == "UPDATE 0"
        )
    finally:
        await conn.close()
    assert {o["properties"]["phone"] for o in hs.sandbox.objects()} == {"+1 555"}


# -- DELETE --------------------------------------------------------------------------


def test_delete_archives_in_the_vendor(hs: Harness) -> None:
    ids = seed(hs, "a@example.com", "b@example.com", "c@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute("DELETE FROM hubspot.contact WHERE email = %s", ("a@example.com",))
        assert (cur.statusmessage, cur.rowcount) == ("DELETE 1", 1)
        cur = conn.execute("DELETE FROM hubspot.contact WHERE email <> %s RETURNING id", ("zzz",))
        assert sorted(r[0] for r in cur.fetchall()) == sorted(ids[1:])
        assert cur.statusmessage == "DELETE 2"
        cur = conn.execute("DELETE FROM hubspot.contact WHERE false")
        assert (cur.statusmessage, cur.rowcount) == ("DELETE 0", 0)
    assert hs.sandbox.objects() == []
    assert sorted(o["id"] for o in archived(hs)) == sorted(ids)
    assert len(calls(hs, "/batch/archive")) == 1


def test_delete_using_local_table(hs: Harness) -> None:
    ids = seed(hs, "a@example.com", "b@example.com")
    seed_users(hs, ("b@example.com", "Bob"))
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "DELETE FROM hubspot.contact c USING public.users u "
            "WHERE u.email = c.email AND u.first_name = %s RETURNING c.id, c.email",
            ("Bob",),
        )
        assert cur.fetchall() == [(ids[1], "b@example.com")]
        assert cur.statusmessage == "DELETE 1"
    assert list(remote(hs)) == [ids[0]]
    assert [o["id"] for o in archived(hs)] == [ids[1]]


# -- INSERT ... ON CONFLICT ------------------------------------------------------------


def test_insert_naming_api_columns_with_null_is_accepted(hs: Harness) -> None:
    """ORMs such as ActiveRecord list every column, the API-assigned ones as NULL."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact (id, email, createdate, lastmodifieddate) "
            "VALUES (%s, %s, %s, DEFAULT) RETURNING id, createdate IS NOT NULL",
            (None, "ar@example.com", None),
        )
        ident, stamped = cur.fetchone()  # type: ignore[misc]
    assert stamped and ident == remote(hs).popitem()[0]


def test_upsert_do_update_new_and_existing(hs: Harness) -> None:
    [ada] = seed(hs, "ada@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact AS c (email, firstname) VALUES (%s, %s), (%s, %s) "
            "ON CONFLICT (email) DO UPDATE SET firstname = EXCLUDED.firstname "
            "RETURNING c.id, c.email, c.firstname",
            ("ada@example.com", "Augusta", "new@example.com", "Newt"),
        )
        rows = sorted(cur.fetchall(), key=lambda r: r[1])
        assert (cur.statusmessage, cur.rowcount) == ("INSERT 0 2", 2)
    assert rows[0] == (ada, "ada@example.com", "Augusta")
    assert rows[1][1:] == ("new@example.com", "Newt") and rows[1][0] != ada
    # The new row goes to the vendor upsert, the existing one sends what changed.
    assert sorted(str(r["path"]) for r in hs.sandbox.vendor_requests()) == [
        f"/crm/v3/objects/contacts/{ada}",
        "/crm/v3/objects/contacts/batch/upsert",
    ]
    objects = remote(hs)
    assert objects[ada]["properties"]["firstname"] == "Augusta"
    assert hs.local("SELECT firstname FROM hubspot.contact WHERE id = %s", ada) == [("Augusta",)]


def test_upsert_do_update_keeps_columns_it_does_not_set(hs: Harness) -> None:
    """Like PostgreSQL: DO UPDATE SET lastname leaves an existing row's firstname alone,
    while a new row takes every inserted value."""
    [ada] = seed(hs, "ada@example.com")  # firstname 'Ada'
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname, lastname) "
            "VALUES ('ada@example.com', 'X', 'L'), ('new@example.com', 'N', 'M') "
            "ON CONFLICT (email) DO UPDATE SET lastname = EXCLUDED.lastname "
            "RETURNING id, email, firstname, lastname"
        )
        rows = sorted(cur.fetchall(), key=lambda r: r[1])
        assert cur.statusmessage == "INSERT 0 2"
    assert rows[0] == (ada, "ada@example.com", "Ada", "L")
    assert rows[1][1:] == ("new@example.com", "N", "M")
    bodies = {str(r["path"]): r["body"] for r in hs.sandbox.vendor_requests()}
    assert bodies[f"/crm/v3/objects/contacts/{ada}"] == {"properties": {"lastname": "L"}}
    objects = remote(hs)
    assert objects[ada]["properties"]["firstname"] == "Ada"
    assert objects[rows[1][0]]["properties"]["firstname"] == "N"


def test_upsert_do_update_expressions_and_where(hs: Harness) -> None:
    """PostgreSQL evaluates the whole DO UPDATE clause: expressions over the existing
    row and EXCLUDED, and a WHERE that can leave a conflicting row alone."""
    ada, bo = seed(hs, "ada@example.com", "bo@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("UPDATE hubspot.contact SET lastname = 'Kept' WHERE id = %s", (bo,))
        clear_log(hs)
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) "
            "VALUES ('ada@example.com', 'A2'), ('bo@example.com', 'B2'), ('cy@example.com', 'Cy') "
            "ON CONFLICT (email) DO UPDATE "
            "SET firstname = hubspot.contact.firstname || '+' || EXCLUDED.firstname "
            "WHERE hubspot.contact.lastname IS NULL RETURNING email, firstname"
        )
        assert cur.fetchall() == [("ada@example.com", "Ada+A2"), ("cy@example.com", "Cy")]
        assert cur.statusmessage == "INSERT 0 2"
    objects = remote(hs)
    assert objects[ada]["properties"]["firstname"] == "Ada+A2"
    assert objects[bo]["properties"]["firstname"] == "Bo"  # WHERE excluded it
    assert f"/crm/v3/objects/contacts/{bo}" not in {r["path"] for r in hs.sandbox.vendor_requests()}


async def test_upsert_asyncpg(hs: Harness) -> None:
    [ada] = seed(hs, "ada@example.com")
    conn = await asyncpg.connect(hs.url)
    try:
        stmt = await conn.prepare(
            "INSERT INTO hubspot.contact (email, firstname) VALUES ($1, $2) "
            "ON CONFLICT (email) DO UPDATE SET firstname = EXCLUDED.firstname RETURNING id"
        )
        assert await stmt.fetchval("ada@example.com", "A2") == ada
        other = await stmt.fetchval("bo@example.com", "Bo")
        assert other not in (None, ada)
        assert await stmt.fetchval("bo@example.com", "Bo2") == other
    finally:
        await conn.close()
    assert {o["properties"]["firstname"] for o in hs.sandbox.objects()} == {"A2", "Bo2"}


def test_upsert_do_nothing_skips_existing(hs: Harness) -> None:
    [ada] = seed(hs, "ada@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) "
            "VALUES ('ada@example.com', 'Other'), ('new@example.com', 'Newt') "
            "ON CONFLICT (email) DO NOTHING RETURNING email, firstname"
        )
        assert cur.fetchall() == [("new@example.com", "Newt")]
        assert (cur.statusmessage, cur.rowcount) == ("INSERT 0 1", 1)
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email) VALUES ('ada@example.com') "
            "ON CONFLICT (email) DO NOTHING"
        )
        assert (cur.statusmessage, cur.rowcount) == ("INSERT 0 0", 0)
    assert remote(hs)[ada]["properties"]["firstname"] == "Ada"
    assert len(hs.sandbox.objects()) == 2


def test_upsert_on_constraint_names_the_email_key(hs: Harness) -> None:
    """ON CONFLICT ON CONSTRAINT contact_email_key is ON CONFLICT (email)."""
    [ada] = seed(hs, "ada@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) "
            "VALUES ('ada@example.com', 'A2'), ('new@example.com', 'Newt') "
            "ON CONFLICT ON CONSTRAINT contact_email_key "
            "DO UPDATE SET firstname = EXCLUDED.firstname RETURNING id, email, firstname"
        )
        rows = sorted(cur.fetchall(), key=lambda r: r[1])
        assert cur.statusmessage == "INSERT 0 2"
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email) VALUES ('ada@example.com') "
            "ON CONFLICT ON CONSTRAINT contact_email_key DO NOTHING"
        )
        assert cur.statusmessage == "INSERT 0 0"
    assert rows[0] == (ada, "ada@example.com", "A2")
    assert rows[1][1:] == ("new@example.com", "Newt")
    assert {o["properties"]["firstname"] for o in hs.sandbox.objects()} == {"A2", "Newt"}


# -- RETURNING, tags, proxy-maintained columns ------------------------------------------


def test_returning_star_shows_api_values(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) VALUES ('ada@example.com', 'Ada') "
            "RETURNING *"
        )
        row = cur.fetchone()
        assert cur.description is not None
        names = [d.name for d in cur.description]
    assert row is not None
    local_names = [
        r[0]
        for r in hs.local(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'hubspot.contact'::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        )
    ]
    assert names == local_names
    values = dict(zip(names, row, strict=True))
    [obj] = hs.sandbox.objects()
    assert values["id"] == obj["id"]
    created = datetime.fromisoformat(str(obj["createdAt"]).replace("Z", "+00:00"))
    assert values["createdate"] == created
    assert values["lastmodifieddate"] == created
    assert values["_updated_at"] == datetime.fromisoformat(
        str(obj["updatedAt"]).replace("Z", "+00:00")
    )
    assert abs(values["_sync_inserted_at"] - datetime.now(UTC)) < timedelta(minutes=1)
    # What RETURNING showed is exactly the stored row.
    assert hs.local("SELECT * FROM hubspot.contact") == [row]


def test_returning_aliases_and_expressions(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact AS c (email, firstname) VALUES ('a@example.com', 'A') "
            "RETURNING c.id, c.email AS mail, upper(c.firstname) AS shout, "
            "c.createdate IS NOT NULL AS stamped, 1 AS one"
        )
        assert cur.description is not None
        assert [d.name for d in cur.description] == ["id", "mail", "shout", "stamped", "one"]
        ident, mail, shout, stamped, one = cur.fetchone()  # type: ignore[misc]
        assert (mail, shout, stamped, one) == ("a@example.com", "A", True, 1)
        cur = conn.execute(
            "UPDATE hubspot.contact AS t SET lastname = 'L' WHERE t.id = %s "
            "RETURNING t.lastname || '!' AS l, t.lastmodifieddate >= t.createdate AS later",
            (ident,),
        )
        assert cur.fetchall() == [("L!", True)]
        cur = conn.execute("DELETE FROM hubspot.contact AS d RETURNING d.*")
        assert cur.fetchone()[:2] == (ident, "a@example.com")  # type: ignore[index]
    assert hs.sandbox.objects() == []


def test_client_supplied_sync_columns_are_replaced(hs: Harness) -> None:
    """``_sync_*`` and ``_updated_at`` are the proxy's: client values are overwritten."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        ident, *stamps = conn.execute(
            "INSERT INTO hubspot.contact (email, _sync_inserted_at, _sync_updated_at, "
            "_updated_at) VALUES ('a@example.com', %s, %s, %s) "
            "RETURNING id, _sync_inserted_at, _sync_updated_at, _updated_at",
            (OLD, OLD, OLD),
        ).fetchone()  # type: ignore[misc]
        assert all(stamp > OLD + timedelta(days=365 * 20) for stamp in stamps)
        inserted_at = stamps[0]
        row = conn.execute(
            "UPDATE hubspot.contact SET firstname = 'A', _sync_inserted_at = %s, "
            "_sync_updated_at = %s, _updated_at = %s "
            "RETURNING _sync_inserted_at, _sync_updated_at, _updated_at",
            (OLD, OLD, OLD),
        ).fetchone()
        assert row is not None
        assert row[0] == inserted_at
        assert row[1] >= inserted_at and row[2] >= stamps[2]
        # Only sync columns assigned: no API call, and still not the client's values.
        row = conn.execute(
            "UPDATE hubspot.contact SET _sync_inserted_at = %s, _updated_at = %s "
            "RETURNING _sync_inserted_at, _updated_at",
            (OLD, OLD),
        ).fetchone()
        assert row is not None and OLD not in row
    assert len(hs.sandbox.vendor_requests()) == 2
    assert hs.local("SELECT _sync_inserted_at FROM hubspot.contact WHERE id = %s", ident) == [
        (inserted_at,)
    ]


# -- name resolution ------------------------------------------------------------------


def test_unqualified_names_follow_search_path(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("SET search_path = hubspot, public")
        cur = conn.execute("INSERT INTO contact (email) VALUES ('sp@example.com') RETURNING id")
        ident = cur.fetchone()[0]  # type: ignore[index]
        assert conn.execute(
            "UPDATE contact SET firstname = %s RETURNING firstname", ("S",)
        ).fetchall() == [("S",)]
    assert remote(hs)[ident]["properties"]["firstname"] == "S"


def test_unqualified_name_of_another_table_passes_through(hs: Harness) -> None:
    """With a search_path where ``contact`` is an ordinary table, nothing is synced."""
    schema = "wp_local_app"
    with psycopg.connect(hs.direct_url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"CREATE TABLE {schema}.contact (id serial PRIMARY KEY, email text)")
    try:
        with psycopg.connect(hs.url, autocommit=True) as conn:
            conn.execute(f"SET search_path = {schema}, hubspot, public")
            cur = conn.execute(
                "INSERT INTO contact (email) VALUES ('local@example.com') RETURNING id"
            )
            assert cur.fetchone() == (1,)
            assert conn.execute("UPDATE contact SET email = 'x'").statusmessage == "UPDATE 1"
            assert conn.execute("DELETE FROM contact").statusmessage == "DELETE 1"
            with conn.cursor(binary=True) as cur:
                cur.execute("INSERT INTO contact (email) VALUES (%s)", ("bin@example.com",))
                assert cur.statusmessage == "INSERT 0 1"
            with conn.transaction():
                cur = conn.execute(
                    "UPDATE contact SET email = %s WHERE email = %s RETURNING email",
                    ("tx@example.com", "bin@example.com"),
                )
                assert cur.fetchall() == [("tx@example.com",)]
        asyncio.run(_asyncpg_local_contact(hs.url, schema))
        assert hs.sandbox.vendor_requests() == []
        assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]
        assert hs.local(f"SELECT count(*) FROM {schema}.contact") == [(3,)]
    finally:
        with psycopg.connect(hs.direct_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


async def _asyncpg_local_contact(url: str, schema: str) -> None:
    """Named prepared statements, in and out of a transaction block."""
    conn = await asyncpg.connect(url, server_settings={"search_path": f"{schema}, hubspot"})
    try:
        stmt = await conn.prepare("INSERT INTO contact (email) VALUES ($1) RETURNING email")
        assert await stmt.fetchval("a1@example.com") == "a1@example.com"
        async with conn.transaction():
            assert await stmt.fetchval("a2@example.com") == "a2@example.com"
            status = await conn.execute("UPDATE contact SET email = upper(email) WHERE id > $1", 0)
            assert status == "UPDATE 3"
    finally:
        await conn.close()


# -- deals: numeric and timestamptz values ----------------------------------------------


@pytest.mark.parametrize("binary", [False, True])
def test_deal_values_encoded_both_ways(hs: Harness, binary: bool) -> None:
    close = datetime(2024, 5, 1, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.cursor(binary=binary)
        cur.execute(
            "INSERT INTO hubspot.deal (dealname, amount, closedate, dealstage, pipeline) "
            "VALUES (%s, %s, %s, 'qualifiedtobuy', 'default') "
            "RETURNING id, amount, closedate, createdate",
            ("Big deal", Decimal("1234.50"), close),
        )
        ident, amount, closedate, createdate = cur.fetchone()  # type: ignore[misc]
        assert (amount, closedate) == (Decimal("1234.5"), close)
        assert isinstance(createdate, datetime)
        cur.execute(
            "UPDATE hubspot.deal SET amount = amount * %s, closedate = closedate + interval "
            "'1 day' WHERE id = %s RETURNING amount, closedate",
            (Decimal(2), ident),
        )
        assert cur.fetchone() == (Decimal("2469"), close + timedelta(days=1))
    [deal] = hs.sandbox.objects("deals")
    assert deal["properties"]["amount"] == "2469"
    assert deal["properties"]["closedate"] == "2024-05-02T08:30:00.000Z"
    assert hs.local("SELECT amount, closedate FROM hubspot.deal") == [
        (Decimal("2469"), close + timedelta(days=1))
    ]


# -- batching -------------------------------------------------------------------------


def test_thousand_row_insert_is_batched(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) "
            "SELECT 'bulk' || g || '@example.com', 'B' || g FROM generate_series(1, 1000) g"
        )
        assert (cur.statusmessage, cur.rowcount) == ("INSERT 0 1000", 1000)
    creates = calls(hs, "/batch/create")
    assert len(creates) <= 10
    assert sum(len(c["body"]["inputs"]) for c in creates) == 1000  # type: ignore[index]
    assert len(hs.sandbox.vendor_requests()) == len(creates)
    ids = hs.local("SELECT count(DISTINCT id), count(*) FROM hubspot.contact")
    assert ids == [(1000, 1000)]
    assert len(hs.sandbox.objects()) == 1000


def test_multi_row_update_and_delete_are_batched(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO hubspot.contact (email) "
            "SELECT 'b' || g || '@example.com' FROM generate_series(1, 250) g"
        )
        clear_log(hs)
        cur = conn.execute("UPDATE hubspot.contact SET lastname = 'Batch'")
        assert (cur.statusmessage, cur.rowcount) == ("UPDATE 250", 250)
        updates = calls(hs, "/batch/update")
        assert [len(u["body"]["inputs"]) for u in updates] == [100, 100, 50]  # type: ignore[index]
        assert {o["properties"].get("lastname") for o in hs.sandbox.objects()} == {"Batch"}
        clear_log(hs)
        cur = conn.execute("DELETE FROM hubspot.contact")
        assert (cur.statusmessage, cur.rowcount) == ("DELETE 250", 250)
    archives = calls(hs, "/batch/archive")
    assert [len(a["body"]["inputs"]) for a in archives] == [100, 100, 50]  # type: ignore[index]
    assert hs.sandbox.objects() == []
    assert len(archived(hs)) == 250


# -- untouched paths --------------------------------------------------------------------


def test_reads_and_unsynced_writes_make_no_api_calls(hs: Harness) -> None:
    [ada] = seed(hs, "ada@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        assert conn.execute("SELECT id FROM hubspot.contact").fetchall() == [(ada,)]
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT email FROM hubspot.contact WHERE id = %s", (ada,))
            assert cur.fetchall() == [("ada@example.com",)]
        conn.execute(
            "INSERT INTO public.users (email, first_name) "
            "SELECT email, firstname FROM hubspot.contact"
        )
        conn.execute(
            "UPDATE public.users u SET last_name = c.lastname FROM hubspot.contact c "
            "WHERE c.email = u.email"
        )
        with conn.transaction():
            conn.execute("SELECT * FROM hubspot.contact FOR UPDATE")
        assert (
            conn.execute(
                "DELETE FROM public.users WHERE email IN (SELECT email FROM hubspot.contact)"
            ).statusmessage
            == "DELETE 1"
        )
    assert hs.sandbox.vendor_requests() == []


def test_unnamed_prepared_statement_reused(hs: Harness) -> None:
    """libpq's PQprepare with the unnamed statement, then several PQexecPrepared."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        pgconn = conn.pgconn
        result = pgconn.prepare(
            b"", b"INSERT INTO hubspot.contact (email) VALUES ($1) RETURNING email"
        )
        assert result.status == psycopg.pq.ExecStatus.COMMAND_OK, result.error_message
        for email in (b"u1@example.com", b"u2@example.com"):
            result = pgconn.exec_prepared(b"", [email])
            assert result.status == psycopg.pq.ExecStatus.TUPLES_OK, result.error_message
            assert result.get_value(0, 0) == email
    assert len(hs.sandbox.objects()) == 2


def test_large_copy_into_ordinary_table_keeps_memory_flat(hs: Harness) -> None:
    """With synced tables configured the relay watches extended-protocol messages; COPY
    data (here one CopyData message per row, as libpq sends them) must not accumulate."""
    from tests.integration.test_lifecycle import rss_bytes

    rows = 400_000
    with psycopg.connect(hs.direct_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.copy_sink (n int)")
    pid = hs.proxy.process.pid
    before = rss_bytes(pid)
    with psycopg.connect(hs.url, autocommit=True) as conn:
        pgconn = conn.pgconn
        pgconn.send_query(b"COPY public.copy_sink FROM STDIN")
        assert pgconn.get_result().status == psycopg.pq.ExecStatus.COPY_IN  # type: ignore[union-attr]
        for i in range(rows):
            pgconn.put_copy_data(b"%d\n" % i)
        pgconn.put_copy_end()
        while (result := pgconn.get_result()) is not None:
            assert result.status == psycopg.pq.ExecStatus.COMMAND_OK, result.error_message
    grown = rss_bytes(pid) - before
    with psycopg.connect(hs.direct_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM public.copy_sink").fetchone() == (rows,)
        conn.execute("DROP TABLE public.copy_sink")
    assert grown < 16 * 1024 * 1024, f"proxy grew by {grown >> 20} MB during COPY"


# -- association tables ------------------------------------------------------------------


def vendor_deals_of(hs: Harness, contact_id: str) -> list[str]:
    """The deals HubSpot associates with a contact (v4 associations API)."""
    body = (
        hs.sandbox.http.get(
            f"/crm/v4/objects/contacts/{contact_id}/associations/deals",
            headers={"Authorization": "Bearer sandbox-token"},
        )
        .raise_for_status()
        .json()
    )
    return sorted(str(r["toObjectId"]) for r in body["results"])


def test_association_rows_create_and_remove_vendor_associations(hs: Harness) -> None:
    [ada] = seed(hs, "ada@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        deal = conn.execute(
            "INSERT INTO hubspot.deal (dealname) VALUES ('Big deal') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        cur = conn.execute(
            "INSERT INTO hubspot.associations_contact_deal (contact_id, deal_id) "
            "VALUES (%s, %s) RETURNING contact_id, deal_id, _sync_inserted_at IS NOT NULL",
            (ada, deal),
        )
        assert (cur.statusmessage, cur.fetchall()) == ("INSERT 0 1", [(ada, deal, True)])
        assert vendor_deals_of(hs, ada) == [deal]
        clear_log(hs)
        # The pair exists: PostgreSQL's own error, before any API call.
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO hubspot.associations_contact_deal (contact_id, deal_id) "
                "VALUES (%s, %s)",
                (ada, deal),
            )
        assert hs.sandbox.vendor_requests() == []
        # An object the vendor does not know: its 404, nothing written locally.
        with pytest.raises(psycopg.errors.NoDataFound):
            conn.execute(
                "INSERT INTO hubspot.associations_contact_deal (contact_id, deal_id) "
                "VALUES (%s, '999999')",
                (ada,),
            )
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("UPDATE hubspot.associations_contact_deal SET deal_id = '1'")
        cur = conn.execute(
            "DELETE FROM hubspot.associations_contact_deal WHERE contact_id = %s RETURNING deal_id",
            (ada,),
        )
        assert (cur.statusmessage, cur.fetchall()) == ("DELETE 1", [(deal,)])
    assert vendor_deals_of(hs, ada) == []
    assert hs.local("SELECT count(*) FROM hubspot.associations_contact_deal") == [(0,)]


def test_association_in_a_failed_pipeline_is_removed_again(hs: Harness) -> None:
    """A pipeline is one transaction: when a later statement fails, the association
    made earlier in it is removed at the vendor too."""
    [ada] = seed(hs, "ada@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        deal = conn.execute(
            "INSERT INTO hubspot.deal (dealname) VALUES ('D') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        with pytest.raises(psycopg.errors.UniqueViolation), conn.pipeline():
            conn.execute(
                "INSERT INTO hubspot.associations_contact_deal (contact_id, deal_id) "
                "VALUES (%s, %s)",
                (ada, deal),
            )
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('ada@example.com')")
    hs.settle()  # the journal resolves the rolled-back block's entries
    assert vendor_deals_of(hs, ada) == []
    assert hs.local("SELECT count(*) FROM hubspot.associations_contact_deal") == [(0,)]
