"""node-postgres (``pg``) through the proxy, as a Node application uses it.

The scenarios live in tests/compat/node/pg.mjs and print JSON; they run as subprocesses
(install them with scripts/install-node-clients). Pass-through scenarios run against
PostgreSQL directly and through the proxy and must observe the same; synced writes are
checked against the HubSpot sandbox, and every synced test ends with the no-drift check.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support import REPO, ProxyProcess, Sandbox, VendorSandbox
from tests.synced import Harness, harness
from tests.vendors import Vendors, vendors

NODE_DIR = REPO / "tests" / "compat" / "node"
NODE_TIMEOUT = 60


def run_node(script: str, *args: str, url: str, direct_url: str | None = None) -> Any:
    """Run ``node SCRIPT ARGS...`` in tests/compat/node; return the JSON it prints."""
    if not (NODE_DIR / "node_modules" / ".prisma" / "client").is_dir():
        pytest.fail("the Node clients are not installed: run scripts/install-node-clients")
    env = {**os.environ, "DATABASE_URL": url, "NODE_NO_WARNINGS": "1"}
    if direct_url is not None:
        env["DIRECT_URL"] = direct_url
    done = subprocess.run(
        ["node", script, *args],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"node {script} {' '.join(args)} failed:\n{done.stderr}"
    return json.loads(done.stdout)


def _same_session_independent(value: Any) -> Any:
    """Temporary schemas are named after the backend (pg_temp_3): not comparable."""
    return json.loads(re.sub(r"pg_temp_\d+", "pg_temp", json.dumps(value)))


def both(proxy: ProxyProcess, direct_url: str, scenario: str) -> Any:
    direct = run_node("pg.mjs", scenario, url=direct_url)
    through = run_node("pg.mjs", scenario, url=proxy.url())
    assert _same_session_independent(through) == _same_session_independent(direct)
    return through


# -- pass-through ---------------------------------------------------------------


def test_pool_parameterized_and_prepared(proxy: ProxyProcess, direct_url: str) -> None:
    out = both(proxy, direct_url, "pool")
    assert out["many"] == [{"n": 2 * i, "s": f"v{i}"} for i in range(20)]
    assert out["prepared"] == ["0", "2", "4", "6", "8"]  # int8 arrives as a string
    assert (out["array"], out["fields"]) == ([[1, "x"]], [["a", 23], ["b", 25]])
    assert out["total"] == 4  # 20 concurrent queries on a pool of 4 connections


def test_transactions_commit_rollback_savepoint(proxy: ProxyProcess, direct_url: str) -> None:
    out = both(proxy, direct_url, "transactions")
    assert out["rows"] == [{"id": 1, "v": "a"}, {"id": 3, "v": "c"}]
    assert (out["failed"]["code"], out["failed"]["constraint"]) == ("23505", "t_pkey")
    assert out["aborted"]["code"] == "25P02"


def test_errors_and_notices_equal_direct(proxy: ProxyProcess, direct_url: str) -> None:
    out = both(proxy, direct_url, "errors")
    codes = {name: error["code"] for name, error in out["errors"].items()}
    assert codes == {
        "division": "22012",
        "syntax": "42601",
        "badParam": "22P02",
        "raised": "P0001",
        "undefinedTable": "42P01",
    }
    assert out["errors"]["raised"] | {"where": None} == {
        "code": "P0001",
        "severity": "ERROR",
        "message": "boom",
        "detail": "d",
        "hint": "h",
        "where": None,
        "routine": "exec_stmt_raise",
    }
    assert [n["message"] for n in out["notices"]] == ["hello 42"]
    assert out["after"] == [{"ok": 1}]


def test_types_round_trip(proxy: ProxyProcess, direct_url: str) -> None:
    out = both(proxy, direct_url, "types")
    params = out["params"]
    assert params["int8"] == "9007199254740993"
    assert params["numeric"] == "12345678901234567890.123456789"
    assert params["bytea"] == "\\x000102ff"
    assert params["timestamptz"] == "2024-05-01T09:30:00.123Z"
    assert params["texts"] == ["a", "b,c", '"q"', None]
    assert params["json"] == {"a": [1, 2], "b": None}
    assert params["nothing"] is None
    assert [row["n"] for row in out["literal"]] == [1, 2, 3]
    assert out["literal"][0]["long"] == 100_000
    assert out["binary"] == [{"i": 42, "t": "bin", "b": True}]


def test_listen_notify(proxy: ProxyProcess, direct_url: str) -> None:
    assert both(proxy, direct_url, "notify") == {"channel": "compat_node", "payload": "payload ☃"}


# -- synced writes --------------------------------------------------------------


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


def _vendor(hs: Harness) -> dict[str, dict[str, Any]]:
    return {str(obj["id"]): obj for obj in hs.sandbox.objects()}


def test_synced_insert_returning_update_delete(hs: Harness) -> None:
    out = run_node("pg.mjs", "synced", "ada@example.com", "Ada", url=hs.url)
    vendor = _vendor(hs)
    insert = out["insert"]
    assert (insert["command"], insert["rowCount"]) == ("INSERT", 1)
    ident = insert["row"]["id"]
    assert insert["row"]["createdate"] == vendor[ident]["properties"]["createdate"]
    # A named prepared synced write, executed twice.
    assert [row["email"] for row in out["prepared"]] == [
        "prepared1@example.com",
        "prepared2@example.com",
    ]
    assert out["update"] == {"command": "UPDATE", "rowCount": 1, "rows": [{"lastname": "Lovelace"}]}
    assert vendor[ident]["properties"]["lastname"] == "Lovelace"
    assert out["delete"] == {"command": "DELETE", "rowCount": 1}
    assert sorted(o["properties"]["email"] for o in vendor.values()) == [
        "ada@example.com",
        "prepared1@example.com",
    ]


def test_signup_two_pools(hs: Harness) -> None:
    """The guide's first pattern: users through a direct pool, the contact via the proxy."""
    out = run_node(
        "pg.mjs", "signupTwoPools", "ada@example.com", "Ada", url=hs.url, direct_url=hs.direct_url
    )
    [obj] = hs.sandbox.objects()
    assert out == {"user": {"id": 1}, "contact": {"id": obj["id"]}}
    assert obj["properties"]["user_id"] == "1"
    assert hs.local("SELECT id, email, user_id FROM hubspot.contact") == [
        (obj["id"], "ada@example.com", 1)
    ]


def test_signup_one_pool_one_transaction(hs: Harness) -> None:
    [out] = run_node("pg.mjs", "signups", "ada@example.com", url=hs.url)
    [obj] = hs.sandbox.objects()
    assert out == {"user": {"id": 1}, "contact": {"id": obj["id"]}}
    assert hs.local("SELECT id, email FROM public.users") == [(1, "ada@example.com")]
    assert hs.local("SELECT id, user_id FROM hubspot.contact") == [(obj["id"], 1)]


def test_signup_duplicate_contact_rolls_the_user_back(hs: Harness) -> None:
    # Sales created the contact in HubSpot before the person signed up.
    with psycopg.connect(hs.url, autocommit=True) as conn:
        existing = conn.execute(
            "INSERT INTO hubspot.contact (email) VALUES ('ada@example.com') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
    failed, then = run_node("pg.mjs", "signups", "ada@example.com", "ok@example.com", url=hs.url)
    error = failed["error"]
    assert (error["code"], error["schema"], error["table"]) == ("23505", "hubspot", "contact")
    assert error["detail"] == "Key (email)=(ada@example.com) already exists."
    # Only the next signup's user is there: its pooled connection was usable again.
    assert hs.local("SELECT id, email FROM public.users") == [
        (then["user"]["id"], "ok@example.com")
    ]
    assert existing in _vendor(hs)
    assert then["contact"]["id"] in _vendor(hs)


def test_signup_invalid_email_rolls_the_user_back(hs: Harness) -> None:
    failed, then = run_node("pg.mjs", "signups", "not-an-email", "ok@example.com", url=hs.url)
    error = failed["error"]
    assert (error["code"], error["column"]) == ("23514", "email")
    assert "not-an-email" in error["message"]
    assert hs.local("SELECT email FROM public.users") == [("ok@example.com",)]
    assert list(_vendor(hs)) == [then["contact"]["id"]]


# -- the Salesforce signup, as the README shows it ------------------------------------------


@pytest.fixture
def sfv(
    vendors_proxy: ProxyProcess,
    synced_url: str,
    sf_sandbox: VendorSandbox,
    stripe_sandbox: VendorSandbox,
) -> Iterator[Vendors]:
    yield from vendors(vendors_proxy, synced_url, sf_sandbox, stripe_sandbox)


def test_salesforce_signup_one_pool_one_transaction(sfv: Vendors) -> None:
    ok, bad, then = run_node(
        "pg.mjs",
        "salesforceSignups",
        "ada@example.com",
        "not-an-email",
        "grace@example.com",
        url=sfv.url,
    )
    held = {c["Email"]: c for c in sfv.sf.objects("Contact")}
    assert set(held) == {"ada@example.com", "grace@example.com"}
    assert ok["contact"]["id"] == held["ada@example.com"]["Id"]
    assert ok["contact"]["name"] == "Ada Lovelace" and ok["contact"]["created_date"]
    # The invalid email rolled the whole signup back, and the pooled connection is usable.
    assert (bad["error"]["code"], bad["error"]["column"]) == ("23514", "email")
    assert sfv.local("SELECT email FROM public.users ORDER BY id") == [
        ("ada@example.com",),
        ("grace@example.com",),
    ]
    assert held["grace@example.com"]["User_Id__c"] == str(then["user"]["id"])
