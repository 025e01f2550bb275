"""ruby-pg and ActiveRecord through the proxy: tests/compat/ruby/probe.rb prints what the
client sees as JSON lines; pass-through must match a direct connection and synced writes
must match the sandbox."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ProxyProcess, Sandbox
from tests.synced import Harness, clean, harness

PROBE = Path(__file__).parent / "ruby" / "probe.rb"
Steps = dict[str, dict[str, Any]]


@pytest.fixture(scope="session")
def ruby() -> str:
    ruby = shutil.which("ruby")
    check = [ruby or "ruby", "-e", 'require "pg"; require "active_record"']
    if ruby is None or subprocess.run(check, capture_output=True, timeout=60).returncode != 0:
        pytest.fail("ruby-pg or ActiveRecord missing: run scripts/install-jvm-ruby-clients")
    return ruby


def run(ruby: str, scenario: str, url: str) -> Steps:
    done = subprocess.run(
        [ruby, str(PROBE), scenario, url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # ruby-pg prints notices (a WARNING from the proxy) there
    steps = [json.loads(line) for line in done.stdout.splitlines()]
    return {step.pop("step"): step for step in steps}


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


def test_pg_matches_direct(ruby: str, proxy: ProxyProcess, direct_url: str) -> None:
    """exec, exec_params (text and binary results), prepare + exec_prepared, transaction
    blocks and errors (with their SQLSTATE and fields)."""
    direct = run(ruby, "pg", direct_url)
    assert run(ruby, "pg", proxy.url()) == direct
    assert direct["exec-params-binary"] == {"value": 7, "format": 1}
    assert direct["prepared"] == {"total": 39800, "statements": ["double"]}
    assert direct["transaction"] == {"names": ["kept"], "status": 0}
    assert [direct[s]["error"] for s in ("error-division", "error-params", "error-prepared")] == [
        "22012",
        "22P02",
        "26000",
    ]


def test_pg_synced_writes(ruby: str, hs: Harness) -> None:
    steps = run(ruby, "pg-synced", hs.url)
    vendor = {o["properties"]["email"]: o for o in hs.sandbox.objects()}  # type: ignore[index]
    assert steps["exec-params-insert"]["tag"] == "INSERT 0 1"
    assert steps["exec-params-insert"]["rows"] == [
        [vendor["r0@example.com"]["id"], "r0@example.com"]
    ]
    assert steps["prepared-insert-1"]["rows"] == [[vendor["r1@example.com"]["id"]]]
    assert steps["duplicate"]["error"] == "23505"
    assert steps["duplicate"]["class"] == "PG::UniqueViolation"
    assert steps["duplicate"]["table"] == "contact"
    assert steps["duplicate-in-transaction"]["error"] == "23505"
    assert steps["after-rollback"]["ghosts"] == "0"
    assert (steps["update"]["tag"], steps["delete"]["tag"]) == ("UPDATE 1", "DELETE 1")
    assert vendor["r0@example.com"]["properties"]["lastname"] == "Upd"  # type: ignore[index]
    # Refused before anything started, without a "no transaction in progress" WARNING.
    assert steps["refused"]["error"] == "0A000"
    assert sorted(vendor) == ["r0@example.com", "r1@example.com", "r2@example.com"]


def test_active_record_matches_direct(
    ruby: str, synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox
) -> None:
    """Models for public.orgs/users: create, where, joins, update, a unique violation,
    a rolled-back transaction; the SQL ActiveRecord sends is the same both ways."""
    clean(synced_url, sandbox)
    direct = run(ruby, "ar", synced_url)
    clean(synced_url, sandbox)
    through = run(ruby, "ar", synced_proxy.url(db="synced"))
    assert through == direct
    assert through["query"]["joined"] == ["Ada"]
    assert through["duplicate"]["class"] == "ActiveRecord::RecordNotUnique"
    assert through["rollback"]["count"] == 0


def test_active_record_synced_model(ruby: str, hs: Harness) -> None:
    """A Contact model on hubspot.contact: create!, find, update!, destroy!, and a failed
    create! rolling back the user created in the same transaction."""
    steps = run(ruby, "ar-synced", hs.url)
    # ActiveRecord leaves out the nil id and unset columns and asks for RETURNING "id".
    assert steps["create"]["sent"] == [
        "BEGIN",
        'INSERT INTO "hubspot"."contact" ("email", "firstname", "user_id") '
        'VALUES ($1, $2, $3) RETURNING "id"',
        "COMMIT",
    ]
    [contact] = hs.sandbox.objects()
    assert steps["create"]["id"] == contact["id"]
    assert steps["find"] == {"email": "ada@example.com", "user_id": 1, "stamped": True}
    assert steps["update"]["sent"][1] == (
        'UPDATE "hubspot"."contact" SET "lastname" = $1 WHERE "hubspot"."contact"."id" = $2'
    )
    assert contact["properties"]["lastname"] == "Lovelace"  # type: ignore[index]
    assert steps["destroy"]["sent"][1] == (
        'DELETE FROM "hubspot"."contact" WHERE "hubspot"."contact"."id" = $1'
    )
    assert steps["destroy"]["count"] == 1  # gone@example.com: archived at the vendor
    assert (steps["duplicate"]["error"], steps["duplicate"]["class"]) == (
        "23505",
        "ActiveRecord::RecordNotUnique",
    )
    assert steps["after-rollback"]["ghosts"] == 0
    assert steps["client-id"]["error"] == "0A000"  # ids are the API's
    assert hs.local("SELECT email FROM public.users") == [("ada@example.com",)]


def test_active_record_bulk_methods(ruby: str, hs: Harness) -> None:
    """insert_all!/insert_all/upsert_all (one multi-row INSERT with literal values;
    insert_all without unique_by says ON CONFLICT DO NOTHING without a target),
    update_all and delete_all."""
    steps = run(ruby, "ar-synced-bulk", hs.url)
    vendor = {o["properties"]["email"]: o for o in hs.sandbox.objects()}  # type: ignore[index]
    ids = {email: obj["id"] for email, obj in vendor.items()}
    [[a], [b]] = steps["insert_all!"]["rows"]
    assert a == ids["a@example.com"] and b.isdigit()  # b@example.com: deleted below
    # The row already there is skipped with DO NOTHING and returned with DO UPDATE.
    assert steps["insert_all-unique_by"]["rows"] == [[ids["d@example.com"]]]
    assert steps["upsert_all"]["rows"] == [[ids["a@example.com"]], [ids["e@example.com"]]]
    assert steps["insert_all"]["rows"] == [[ids["c@example.com"]]]
    assert "ON CONFLICT  DO NOTHING" in steps["sent"]["sql"][1]
    assert (steps["update_all"]["count"], steps["delete_all"]["count"]) == (2, 1)
    assert sorted(vendor) == ["a@example.com", "c@example.com", "d@example.com", "e@example.com"]
    assert vendor["a@example.com"]["properties"]["firstname"] == "A"  # type: ignore[index]
    assert vendor["a@example.com"]["properties"]["lastname"] == "X"  # type: ignore[index]


def test_active_record_synced_model_all_columns(ruby: str, hs: Harness) -> None:
    """Rails 7's default (partial_inserts = false; ActiveRecord 6.1: partial_writes)."""
    steps = run(ruby, "ar-synced-all-columns", hs.url)
    assert '"createdate", "lastmodifieddate", "_sync_inserted_at"' in steps["sent"]["sql"][0]
    assert steps["create"]["error"] is None, steps["create"]
    assert len(hs.sandbox.objects()) == 1
