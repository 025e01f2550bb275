"""Prisma ORM 7 through the proxy: the HubSpot playbook schema (public + hubspot) with the
generator prisma-client-js and the node-postgres driver adapter (@prisma/adapter-pg).

The scenarios live in tests/compat/node/prisma.mjs, the hand-written schema in
tests/compat/node/prisma/schema.prisma. Reads are compared with PostgreSQL directly;
writes are checked against the HubSpot sandbox and end with the no-drift check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.compat.test_compat_node import run_node
from tests.support import ProxyProcess, Sandbox
from tests.synced import Harness, harness


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


def prisma(hs: Harness, scenario: str, *args: str) -> Any:
    return run_node("prisma.mjs", scenario, *args, url=hs.url)


def vendor(hs: Harness, object_type: str = "contacts") -> dict[str, dict[str, Any]]:
    return {str(obj["id"]): obj["properties"] for obj in hs.sandbox.objects(object_type)}


def through_proxy(hs: Harness, sql: str, *params: Any) -> Any:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchone()[0]  # type: ignore[index]


def seed_app_users(hs: Harness) -> None:
    with psycopg.connect(hs.direct_url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.orgs (name) VALUES ('Analytical')")
        conn.execute(
            "INSERT INTO public.users (email, first_name, org_id) "
            "VALUES ('ada@example.com', 'Ada', 1), ('grace@example.com', 'Grace', NULL)"
        )


def test_reads_across_both_schemas(hs: Harness) -> None:
    seed_app_users(hs)
    ada = through_proxy(
        hs,
        "INSERT INTO hubspot.contact (email, firstname, user_id) "
        "VALUES ('ada@example.com', 'Ada', 1) RETURNING id",
    )
    engine, loom = (
        through_proxy(
            hs,
            "INSERT INTO hubspot.deal (dealname, amount) VALUES (%s, %s) RETURNING id",
            name,
            amount,
        )
        for name, amount in (("Engine", "1843.5"), ("Loom", "12"))
    )
    # Synced data as a sync would have written it: labelled associations (which the proxy
    # cannot write yet) exist at the vendor and locally.
    for deal in (engine, loom):
        hs.sandbox.http.put(
            f"/crm/v4/objects/contacts/{ada}/associations/default/deals/{deal}",
            headers={"Authorization": "Bearer sandbox-token"},
        ).raise_for_status()
    hs.local(
        "INSERT INTO hubspot.associations_contact_deal (contact_id, deal_id, labels) "
        "VALUES (%s, %s, '{Decision maker}'), (%s, %s, '{}') RETURNING contact_id",
        ada,
        engine,
        ada,
        loom,
    )

    out = prisma(hs, "read", "ada@example.com")
    assert out == run_node("prisma.mjs", "read", "ada@example.com", url=hs.direct_url)

    first, second = out["users"]
    assert (first["email"], first["org"]["name"], second["org"]) == (
        "ada@example.com",
        "Analytical",
        None,
    )
    [contact] = first["contacts"]
    assert contact["id"] == ada
    assert sorted(d["deal"]["dealname"] for d in contact["deals"]) == ["Engine", "Loom"]
    assert second["contacts"] == []
    assert out["contact"]["user"]["org"]["name"] == "Analytical"
    assert {d["deal_id"]: d["labels"] for d in out["contact"]["deals"]} == {
        engine: ["Decision maker"],
        loom: [],
    }
    [deal] = out["deals"]  # amount >= 100
    assert (deal["id"], deal["amount"]) == (engine, "1843.5")
    assert deal["contacts"] == [
        {"contact": {"email": "ada@example.com"}, "labels": ["Decision maker"]}
    ]
    assert out["orgs"] == [{"name": "Analytical", "_count": {"users": 1}}]
    assert (out["associations"], out["raw"]) == (2, [{"n": 1}])


def test_create_update_delete_reach_hubspot(hs: Harness) -> None:
    seed_app_users(hs)
    out = prisma(hs, "crud", "ada@example.com", "1")
    contacts, deals = vendor(hs), vendor(hs, "deals")

    created = out["created"]
    assert set(contacts) == {created["id"]}  # the nested contact was deleted again
    assert contacts[created["id"]]["email"] == "ada@example.com"
    assert contacts[created["id"]]["user_id"] == "1"
    assert created["createdate"] == contacts[created["id"]]["createdate"]
    # Prisma sent its own now() for _sync_inserted_at before the API call; the proxy
    # replaced it with the time the API answered.
    assert created["sync_inserted_at"] >= created["createdate"]

    assert out["updated"]["lastname"] == contacts[created["id"]]["lastname"] == "Lovelace"
    assert contacts[created["id"]]["phone"] == "+44 20 7946 0000"

    # What you write is what you read: the API's canonical amount ("1843.50" sent).
    assert out["deal"]["amount"] == "1843.5"
    deal = out["dealUpdated"]  # { increment: 100 } is SET amount = amount + $1
    assert (deal["dealstage"], deal["amount"]) == ("closedwon", "1943.5")
    assert (deals[deal["id"]]["dealstage"], deals[deal["id"]]["amount"]) == ("closedwon", "1943.5")

    nested = out["nested"]
    assert nested["contacts"][0]["user_id"] == nested["id"]
    assert out["deleted"]["id"] == nested["contacts"][0]["id"]
    assert hs.local("SELECT email FROM public.users ORDER BY id") == [
        ("ada@example.com",),
        ("grace@example.com",),
        ("nested@example.com",),
    ]


def test_bulk_operations(hs: Harness) -> None:
    out = prisma(hs, "bulk")
    assert out["many"] == {"count": 2}
    assert [(r["email"], r["firstname"]) for r in out["returned"]] == [
        ("b3@example.com", "B3"),
        ("b4@example.com", "B4"),
    ]
    assert (out["updatedMany"], out["deletedMany"], out["raw"]) == ({"count": 4}, {"count": 2}, 1)
    assert sorted(out["updatedReturned"], key=lambda row: row["email"]) == [
        {"email": "b3@example.com", "lifecyclestage": "lead"},
        {"email": "b4@example.com", "lifecyclestage": "lead"},
    ]
    contacts = vendor(hs)
    assert {r["id"] for r in out["returned"]} <= set(contacts)
    assert sorted(
        (p["email"], p.get("company"), p.get("lifecyclestage")) for p in contacts.values()
    ) == [
        ("b3@example.com", "Babbage & Co", "lead"),
        ("b4@example.com", "Babbage & Co", "lead"),
        ("raw@example.com", None, None),
    ]


def test_batch_transaction(hs: Harness) -> None:
    user, contact, deal, count = prisma(hs, "batch", "grace@example.com")["value"]
    assert user["email"] == contact["email"] == "grace@example.com"
    assert count == 1
    assert set(vendor(hs)) == {contact["id"]}
    assert vendor(hs, "deals")[deal["id"]]["amount"] == "1959"
    assert hs.local("SELECT email FROM public.users") == [("grace@example.com",)]


def test_batch_transaction_with_a_rejected_contact_rolls_back(hs: Harness) -> None:
    taken = through_proxy(
        hs, "INSERT INTO hubspot.contact (email) VALUES ('grace@example.com') RETURNING id"
    )
    error = prisma(hs, "batch", "grace@example.com")["error"]
    assert (error["code"], error["sqlstate"]) == ("P2002", "23505")
    assert error["target"], error  # Prisma names the unique field, as against PostgreSQL
    assert hs.local("SELECT count(*) FROM public.users") == [(0,)]
    assert set(vendor(hs)) == {taken}
    assert vendor(hs, "deals") == {}


def test_interactive_transaction_commits_user_and_contact(hs: Harness) -> None:
    [result] = prisma(hs, "signups", "ada@example.com")
    out = result["value"]
    [contact_id] = vendor(hs)
    assert out["contact"]["id"] == contact_id
    assert out["contact"]["user_id"] == out["user"]["id"]
    assert hs.local(
        "SELECT u.email FROM public.users u JOIN hubspot.contact c ON c.user_id = u.id"
    ) == [("ada@example.com",)]


@pytest.mark.parametrize(
    ("email", "code", "sqlstate"),
    [("taken@example.com", "P2002", "23505"), ("not-an-email", "P2039", "23514")],
)
def test_rejected_contact_rolls_back_the_user(
    hs: Harness, email: str, code: str, sqlstate: str
) -> None:
    through_proxy(
        hs, "INSERT INTO hubspot.contact (email) VALUES ('taken@example.com') RETURNING id"
    )
    failed, then = prisma(hs, "signups", email, "ok@example.com")
    error = failed["error"]
    assert (error["name"], error["code"], error["sqlstate"]) == (
        "PrismaClientKnownRequestError",
        code,
        sqlstate,
    )
    # Only the next signup's user is there; the session was usable after the rollback.
    assert hs.local("SELECT email FROM public.users") == [("ok@example.com",)]
    assert sorted(p["email"] for p in vendor(hs).values()) == [
        "ok@example.com",
        "taken@example.com",
    ]
    assert then["value"]["contact"]["email"] == "ok@example.com"


def test_no_matching_row_is_record_not_found_without_api_calls(hs: Harness) -> None:
    out = prisma(hs, "missing")
    assert out["update"]["error"]["code"] == out["delete"]["error"]["code"] == "P2025"
    assert out["updateMany"] == {"count": 0}
    assert hs.sandbox.vendor_requests() == []


def test_association_create_links_contact_and_deal(hs: Harness) -> None:
    """A Prisma create on the association table becomes a HubSpot v4 association."""
    contact = through_proxy(
        hs, "INSERT INTO hubspot.contact (email) VALUES ('a@example.com') RETURNING id"
    )
    deal = through_proxy(hs, "INSERT INTO hubspot.deal (dealname) VALUES ('D') RETURNING id")
    created = prisma(hs, "associate", contact, deal)
    assert created["value"]["deal_id"] == deal, created
    linked = hs.sandbox.http.get(
        f"/crm/v4/objects/contacts/{contact}/associations/deals",
        headers={"Authorization": "Bearer sandbox-token"},
    ).json()["results"]
    assert [str(r["toObjectId"]) for r in linked] == [deal]
    assert hs.local("SELECT contact_id, deal_id FROM hubspot.associations_contact_deal") == [
        (contact, deal)
    ]


def test_upsert_by_email(hs: Harness) -> None:
    """Prisma's native upsert: ON CONFLICT (email) DO UPDATE SET col = $n WHERE (...)."""
    created = prisma(hs, "upsert", "ada@example.com", "Ada")
    assert "value" in created, created
    updated = prisma(hs, "upsert", "ada@example.com", "Augusta")
    assert updated["value"]["id"] == created["value"]["id"]
    assert vendor(hs)[created["value"]["id"]]["firstname"] == "Augusta"


def test_create_many_skip_duplicates(hs: Harness) -> None:
    """createMany({ skipDuplicates }): ON CONFLICT DO NOTHING without a target."""
    through_proxy(hs, "INSERT INTO hubspot.contact (email) VALUES ('a@example.com') RETURNING id")
    out = prisma(hs, "skipDuplicates", "a@example.com", "b@example.com")
    assert out == {"value": {"count": 1}}
    assert sorted(p["email"] for p in vendor(hs).values()) == ["a@example.com", "b@example.com"]
