"""The journal against the suite's real PostgreSQL, and its resolver against the real
HubSpot sandbox over HTTP with the real connector."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import psycopg
import pytest
from click.testing import CliRunner

from proxy.cli import main as cli
from proxy.connectors import build_connector
from proxy.connectors.base import ApiError, CallOutcome, Connector, ErrorKind, Operation, VendorCall
from proxy.embedded import LocalPostgres
from proxy.journal import (
    Journal,
    JournalError,
    JournalHooks,
    JournalSetupError,
    Outcome,
    Resolver,
)
from proxy.journal.budget import PostgresBudget
from proxy.journal.model import UNKNOWN, EntryState, LaterWrite, Result, Verdict
from proxy.journal.schema import SCHEMA_VERSION, migrations
from tests.support import Sandbox

S = EntryState
DB = "journal_store"
WEAK_ROLE = "journal_weak"


@pytest.fixture(scope="module")
def db_url(pg: LocalPostgres) -> str:
    """A fresh database for this module."""
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    return pg.url.rsplit("/", 1)[0] + f"/{DB}"


@pytest.fixture
async def journal(db_url: str) -> AsyncIterator[Journal]:
    async with Journal(db_url, owner="test-a") as opened:
        await opened.ensure_schema()
        await opened.pool.execute("TRUNCATE writeproxy.journal RESTART IDENTITY")
        yield opened


@contextlib.contextmanager
def transaction(url: str) -> Iterator[tuple[psycopg.Connection[Any], int]]:
    """A client transaction (psycopg) and its xid8; rolled back unless committed."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
        assert row is not None
        yield conn, int(row[0])
        conn.rollback()


def call(n: int = 1, operation: Operation = Operation.CREATE) -> VendorCall:
    inputs = tuple({"properties": {"email": f"u{i}@x.io"}} for i in range(n))
    return VendorCall(operation, "contacts", inputs)


async def intent(journal: Journal, xid: int = 1, **options: Any) -> int:
    return await journal.record_intent(call(), xid=xid, connector="hubspot", **options)


# -- schema -----------------------------------------------------------------------------


async def test_ensure_schema_is_idempotent_and_versioned(journal: Journal) -> None:
    assert await journal.ensure_schema() == SCHEMA_VERSION
    assert await journal.ensure_schema() == SCHEMA_VERSION
    rows = await journal.pool.fetch("SELECT key, value FROM writeproxy.meta")
    assert [tuple(r) for r in rows] == [("schema_version", str(SCHEMA_VERSION))]
    indexes = await journal.pool.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'writeproxy' ORDER BY 1"
    )
    assert "journal_open" in [r[0] for r in indexes]


async def test_a_version_1_journal_is_migrated_and_keeps_its_entries(db_url: str) -> None:
    """Version 2 added the shared vendor rate budget; a journal a version-1 proxy
    made is migrated in place at startup."""
    async with Journal(db_url, schema="wp_v1") as j:
        async with j.pool.acquire() as conn:
            await conn.execute("DROP SCHEMA IF EXISTS wp_v1 CASCADE")
            await conn.execute("CREATE SCHEMA wp_v1")
            await conn.execute(
                "CREATE TABLE wp_v1.meta (key text PRIMARY KEY, value text NOT NULL)"
            )
            for statement in migrations("wp_v1")[1]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO wp_v1.meta VALUES ('schema_version', '1')")
        kept = await j.record_intent(call(), xid=1, connector="hubspot")
        assert await j.ensure_schema() == SCHEMA_VERSION == 2
        assert (await j.get(kept)) is not None
        budget = PostgresBudget(j)
        first, _ = await budget.take("acct", 1, 60.0)
        assert first is not None
        none, wait_s = await budget.take("acct", 1, 60.0)
        assert none is None and 59.0 < wait_s <= 120.0  # in flight: one window ahead
        await budget.answered(first)
        none, wait_s = await budget.take("acct", 1, 60.0)
        assert none is None and 59.0 < wait_s <= 60.0  # a window from the answer
        other, _ = await budget.take("another account", 1, 60.0)
        assert other is not None
        await j.pool.execute("DROP SCHEMA wp_v1 CASCADE")


async def test_concurrent_first_setups_do_not_collide(db_url: str) -> None:
    journals = [Journal(db_url, schema="wp_race") for _ in range(4)]
    try:
        for j in journals:
            await j.open()
        versions = await asyncio.gather(*(j.ensure_schema() for j in journals))
        assert versions == [SCHEMA_VERSION] * 4
    finally:
        for j in journals:
            await j.close()


async def test_a_newer_schema_is_refused(db_url: str) -> None:
    async with Journal(db_url, schema="wp_future") as j:
        await j.ensure_schema()
        await j.pool.execute("UPDATE wp_future.meta SET value = '99'")
        with pytest.raises(JournalSetupError, match="version 99, newer"):
            await j.ensure_schema()


@pytest.fixture
def weak_url(db_url: str) -> Iterator[str]:
    """A login role with no privileges beyond CONNECT."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("DROP SCHEMA IF EXISTS wp_weak, wp_admin CASCADE")
        admin.execute(f"DROP ROLE IF EXISTS {WEAK_ROLE}")
        admin.execute(f"CREATE ROLE {WEAK_ROLE} LOGIN")
    yield db_url.replace("postgres@", f"{WEAK_ROLE}@")
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("DROP SCHEMA IF EXISTS wp_weak, wp_admin CASCADE")
        admin.execute(f"DROP OWNED BY {WEAK_ROLE}")
        admin.execute(f"DROP ROLE {WEAK_ROLE}")


async def test_missing_privileges_name_the_one_time_grant(db_url: str, weak_url: str) -> None:
    def admin(sql: str) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql)

    async with Journal(weak_url, schema="wp_weak") as j:
        with pytest.raises(JournalSetupError) as raised:
            await j.ensure_schema()
        message = str(raised.value)
        assert "lacks the CREATE privilege on the database" in message
        assert f'GRANT CREATE ON DATABASE "{DB}" TO "{WEAK_ROLE}";' in message
        assert 'CREATE SCHEMA "wp_weak"; GRANT USAGE, CREATE ON SCHEMA "wp_weak"' in message

        admin(f"CREATE SCHEMA wp_weak; GRANT USAGE ON SCHEMA wp_weak TO {WEAK_ROLE}")
        with pytest.raises(JournalSetupError) as raised:
            await j.ensure_schema()
        assert f'GRANT USAGE, CREATE ON SCHEMA "wp_weak" TO "{WEAK_ROLE}";' in str(raised.value)

        # the documented fix works, without CREATE on the database
        admin(f"GRANT CREATE ON SCHEMA wp_weak TO {WEAK_ROLE}")
        assert await j.ensure_schema() == SCHEMA_VERSION
        assert await j.record_intent(call(), xid=1, connector="hubspot") == 1

    # tables an administrator created, without grants on them
    async with Journal(db_url, schema="wp_admin") as j:
        await j.ensure_schema()
    admin(f"GRANT USAGE ON SCHEMA wp_admin TO {WEAK_ROLE}")
    async with Journal(weak_url, schema="wp_admin") as j:
        with pytest.raises(JournalSetupError, match='ON ALL TABLES IN SCHEMA "wp_admin"'):
            await j.ensure_schema()


# -- the write path ---------------------------------------------------------------------


async def test_intent_and_outcome_round_trip(journal: Journal) -> None:
    forward = VendorCall(
        Operation.UPDATE,
        "contacts",
        ({"id": "7", "properties": {"firstname": "New"}},),
    )
    entry_id = await journal.record_intent(
        forward,
        xid=4242,
        connector="hubspot",
        previous={"7": {"firstname": "Old"}},
        lookup_property="email",
    )
    entry = await journal.get(entry_id)
    assert entry is not None
    assert (entry.state, entry.xid, entry.connector, entry.operation) == (
        S.INTENT,
        4242,
        "hubspot",
        Operation.UPDATE,
    )
    assert entry.call_id == forward.call_id and entry.database == DB  # the idempotency key
    assert entry.inputs == ({"id": "7", "properties": {"firstname": "New"}},)
    assert entry.previous == {"7": {"firstname": "Old"}}
    assert entry.lookup_property == "email" and entry.results is None
    assert entry.claimed_by == "test-a" and entry.claimed_until is not None  # in flight

    assert await journal.record_outcome(entry_id, S.APPLIED, [Result("7", False)]) is S.APPLIED
    entry = await journal.get(entry_id)
    assert entry is not None
    assert entry.results == (Result("7", False),) and entry.claimed_by is None

    lost = await intent(journal)
    outcome = CallOutcome(error=ApiError(ErrorKind.OUTCOME_UNKNOWN, "t", retry_safe=False))
    assert await journal.record_call_outcome(lost, call(), outcome) is S.UNKNOWN
    stored = await journal.get(lost)
    assert stored is not None and stored.results == (UNKNOWN,)
    assert stored.last_error == "outcome_unknown: t"


async def test_the_call_id_is_unique(journal: Journal) -> None:
    once = call()
    await journal.record_intent(once, xid=1, connector="hubspot")
    with pytest.raises(asyncpg.UniqueViolationError):
        await journal.record_intent(once, xid=1, connector="hubspot")


async def test_a_late_answer_reopens_a_settled_entry(journal: Journal) -> None:
    entry_id = await intent(journal, lease_s=0)
    [claimed] = await journal.claim(10, owner="resolver")
    assert claimed.id == entry_id
    assert await journal.settle(claimed, S.COMPENSATED, owner="resolver")
    assert await journal.record_outcome(entry_id, S.APPLIED, [Result("9", True)]) is (
        S.COMPENSATING
    )
    entry = await journal.get(entry_id)
    assert entry is not None and entry.results == (Result("9", True),)
    # a late "unknown" says nothing new
    other = await intent(journal, lease_s=0)
    [claimed] = await journal.claim_ids([other], owner="resolver")
    assert await journal.settle(claimed, S.COMPENSATED, owner="resolver")
    assert await journal.record_outcome(other, S.UNKNOWN, [UNKNOWN]) is S.COMPENSATED


async def test_closed_names_the_entries_in_a_terminal_state(journal: Journal) -> None:
    open_one, rejected = await intent(journal), await intent(journal)
    assert await journal.record_outcome(rejected, S.FAILED, []) is S.FAILED
    assert await journal.closed([open_one, rejected, 424242]) == {rejected}
    assert await journal.closed([]) == set()


async def test_mark_rolled_back(journal: Journal) -> None:
    first, second = await intent(journal), await intent(journal)
    assert await journal.mark_rolled_back([first]) == 1
    assert await journal.mark_rolled_back([first]) == 0
    marked = await journal.get(first)
    unmarked = await journal.get(second)
    assert marked is not None and marked.rolled_back
    assert unmarked is not None and not unmarked.rolled_back


# -- verdicts ---------------------------------------------------------------------------


async def test_xact_status_of_committed_aborted_and_running_transactions(
    journal: Journal, db_url: str
) -> None:
    with transaction(db_url) as (conn, committed):
        conn.commit()
    with transaction(db_url) as (conn, aborted):
        conn.rollback()
    with transaction(db_url) as (conn, running):
        future = running + 1_000_000
        status = await journal.xact_status([committed, aborted, running, future, committed])
    assert status == {
        committed: Verdict.COMMITTED,
        aborted: Verdict.ABORTED,
        running: Verdict.IN_PROGRESS,
        future: None,  # PostgreSQL cannot know: an error there, unknown here
    }
    assert await journal.xact_status([]) == {}


# -- claims -----------------------------------------------------------------------------


async def _applied(journal: Journal, n: int) -> list[int]:
    ids = []
    for _ in range(n):
        entry_id = await intent(journal)
        await journal.record_outcome(entry_id, S.APPLIED, [Result("1", True)])
        ids.append(entry_id)
    return ids


async def test_concurrent_claimers_never_share_an_entry(journal: Journal, db_url: str) -> None:
    ids = await _applied(journal, 60)
    async with Journal(db_url, owner="test-b") as other:
        claimed: list[tuple[str, int]] = []
        for _ in range(10):  # 8 concurrent claims of 3 per round: 60 entries take 3 rounds
            rounds = await asyncio.gather(*(j.claim(3) for j in [journal, other] * 4))
            claimed += [(e.claimed_by or "", e.id) for entries in rounds for e in entries]
    owners = {owner for owner, _ in claimed}
    assert owners == {"test-a", "test-b"}
    claimed_ids = [entry_id for _, entry_id in claimed]
    assert sorted(claimed_ids) == ids  # every entry exactly once


async def test_a_claim_takes_only_the_claimers_connectors(journal: Journal) -> None:
    """Proxies with different connector sets share one journal: each claims only what
    it can resolve, and what nobody's connectors cover is counted for a warning."""
    [hubspot] = await _applied(journal, 1)
    stripe = await journal.record_intent(call(), xid=1, connector="stripe")
    await journal.record_outcome(stripe, S.APPLIED, [Result("cus_1", True)])
    assert await journal.claim(10, connectors=["salesforce"]) == []
    assert await journal.claim_ids([hubspot, stripe], connectors=["salesforce"]) == []
    [taken] = await journal.claim_ids([hubspot, stripe], connectors=["hubspot"])
    assert taken.id == hubspot
    [taken] = await journal.claim(10, connectors=["stripe", "salesforce"])
    assert taken.id == stripe
    assert await journal.unowned(["hubspot"], older_than_s=0.0) == {"stripe": 1}
    assert await journal.unowned(["hubspot"], older_than_s=60.0) == {}
    assert await journal.unowned(["hubspot", "stripe"], older_than_s=0.0) == {}


async def test_settle_committed_takes_only_answered_free_entries_of_committed_xids(
    journal: Journal, db_url: str
) -> None:
    with transaction(db_url) as (conn, xid):
        conn.commit()
    with transaction(db_url) as (_, running):
        entries = {}
        for name, entry_xid in [("done", xid), ("running", running), ("undone", xid)]:
            entry_id = await journal.record_intent(call(), xid=entry_xid, connector="hubspot")
            await journal.record_outcome(entry_id, S.APPLIED, [Result("1", True)])
            entries[name] = entry_id
        entries["unanswered"] = await journal.record_intent(call(), xid=xid, connector="hubspot")
        await journal.mark_rolled_back([entries["undone"]])
        assert await journal.settle_committed(entries.values(), ["stripe"]) == []
        assert await journal.settle_committed(entries.values(), ["hubspot"]) == [entries["done"]]
    stored = await journal.get(entries["done"])
    assert stored is not None and stored.state is S.COMMITTED and stored.attempts == 0
    for name in ("running", "undone", "unanswered"):
        other = await journal.get(entries[name])
        assert other is not None and other.state is not S.COMMITTED


async def test_a_lease_blocks_others_until_it_expires(journal: Journal, db_url: str) -> None:
    [entry_id] = await _applied(journal, 1)
    [mine] = await journal.claim(10, lease_s=0.5)
    assert mine.id == entry_id and mine.claimed_by == "test-a"
    async with Journal(db_url, owner="test-b") as other:
        assert await other.claim(10) == []
        assert await other.claim_ids([entry_id]) == []
        # the first owner dies without settling; its lease runs out
        await asyncio.sleep(0.6)
        [taken] = await other.claim(10)
        assert taken.id == entry_id and taken.claimed_by == "test-b"
        # the dead owner's late settle is refused
        assert not await journal.settle(mine, S.COMMITTED)
        assert await other.settle(taken, S.COMMITTED)
    entry = await journal.get(entry_id)
    assert entry is not None and entry.state is S.COMMITTED and entry.claimed_by is None


async def test_release_settle_and_backoff(journal: Journal) -> None:
    [entry_id] = await _applied(journal, 1)
    [entry] = await journal.claim(10)
    assert await journal.release([entry_id], retry_in=3600) == 1
    assert await journal.claim(10) == []  # not due for an hour
    [entry] = await journal.claim_ids([entry_id])  # the live path does not wait
    assert await journal.settle(entry, S.COMPENSATING, error="boom", retry_in=3600)
    assert await journal.claim(10) == []
    stored = await journal.get(entry_id)
    assert stored is not None
    assert (stored.state, stored.attempts, stored.last_error) == (S.COMPENSATING, 1, "boom")
    # the live path does not hurry a failed compensation: its backoff holds
    assert await journal.claim_ids([entry_id]) == []
    await journal.pool.execute(
        "UPDATE writeproxy.journal SET next_attempt_at = now() WHERE id = $1", entry_id
    )
    # a stale view of the entry (wrong expected state) writes nothing
    [entry] = await journal.claim_ids([entry_id])
    assert not await journal.settle(replace(entry, state=S.APPLIED), S.COMMITTED)


async def test_only_this_databases_entries_are_claimed_and_listed(journal: Journal) -> None:
    [mine] = await _applied(journal, 1)
    [copied] = await _applied(journal, 1)
    await journal.pool.execute(
        "UPDATE writeproxy.journal SET database = 'other' WHERE id = $1", copied
    )
    assert [e.id for e in await journal.list()] == [mine]
    assert [e.id for e in await journal.claim(10)] == [mine]


async def test_list_retry_and_purge(journal: Journal) -> None:
    committed, conflict, failed = await _applied(journal, 3)
    for entry_id, state in ((committed, S.COMMITTED), (conflict, S.CONFLICT)):
        [entry] = await journal.claim_ids([entry_id])
        assert await journal.settle(entry, state, error="changed since")
    await journal.pool.execute(
        "UPDATE writeproxy.journal SET state = 'failed' WHERE id = $1", failed
    )
    assert [e.id for e in await journal.list()] == [failed, conflict, committed]
    assert [e.id for e in await journal.list([S.CONFLICT])] == [conflict]
    assert [e.id for e in await journal.list(limit=1)] == [failed]

    retried = await journal.retry(conflict)
    assert (retried.state, retried.attempts) == (S.COMPENSATING, 0)
    with pytest.raises(JournalError, match="is committed: nothing to retry"):
        await journal.retry(committed)
    with pytest.raises(JournalError, match="no journal entry 999"):
        await journal.retry(999)

    assert await journal.purge(timedelta(days=1)) == 0  # all recent
    await journal.pool.execute(
        "UPDATE writeproxy.journal SET updated_at = now() - '2 days'::interval"
    )
    assert await journal.purge(timedelta(days=1)) == 2  # committed and failed
    assert [e.id for e in await journal.list()] == [conflict]  # open: kept


def test_cli_lists_and_retries(db_url: str) -> None:
    async def setup() -> tuple[int, int]:
        async with Journal(db_url) as j:
            await j.ensure_schema()
            await j.pool.execute("TRUNCATE writeproxy.journal RESTART IDENTITY")
            secret = VendorCall(
                Operation.CREATE, "contacts", ({"properties": {"email": "secret@x.io"}},)
            )
            first = await j.record_intent(secret, xid=77, connector="hubspot")
            await j.record_outcome(first, S.APPLIED, [Result("1", True)])
            second = await j.record_intent(call(), xid=78, connector="hubspot")
            await j.record_outcome(second, S.APPLIED, [Result("2", True)])
            [entry] = await j.claim_ids([second])
            await j.settle(entry, S.CONFLICT, error="firstname changed at the vendor since")
            return first, second

    first, second = asyncio.run(setup())
    assert first < second
    runner = CliRunner()
    listed = runner.invoke(cli, ["journal", "list", "--upstream", db_url])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == [
        "id", "created", "xid", "connector", "object", "type", "operation", "state",
        "attempts", "last", "error",
    ]  # fmt: skip
    assert lines[2].split()[0] == str(second) and "conflict" in lines[2]
    assert "firstname changed" in lines[2] and "77" in lines[3]
    assert "secret" not in listed.output  # no row values

    only = runner.invoke(cli, ["journal", "list", "--upstream", db_url, "--state", "applied"])
    assert only.exit_code == 0 and len(only.output.splitlines()) == 3

    retried = runner.invoke(cli, ["journal", "retry", "--upstream", db_url, str(second)])
    assert retried.exit_code == 0, retried.output
    assert f"journal entry {second} is compensating and due now" in retried.output
    refused = runner.invoke(cli, ["journal", "retry", "--upstream", db_url, "999"])
    assert refused.exit_code == 1 and "no journal entry 999" in refused.output


# -- the resolver against the HubSpot sandbox -------------------------------------------


@pytest.fixture
async def hubspot(sandbox: Sandbox) -> AsyncIterator[Connector]:
    """The real connector, built as the worker builds it, with fast retries."""
    sandbox.reset()
    connector = build_connector(
        "hubspot",
        token="sandbox-token",
        base_url=sandbox.base_url,
        max_attempts=2,
        backoff_base_s=0.01,
        backoff_cap_s=0.05,
        read_timeout_s=2,
    )
    yield connector
    await connector.aclose()


@pytest.fixture
def resolver(journal: Journal, hubspot: Connector) -> Resolver:
    return Resolver(journal, {"hubspot": hubspot}, settle_s=0)


def live(sandbox: Sandbox, object_type: str = "contacts") -> list[dict[str, Any]]:
    """The vendor's live objects with every value."""
    return [dict(o) for o in sandbox.objects(object_type)]


def archived(sandbox: Sandbox, object_type: str = "contacts") -> list[dict[str, Any]]:
    response = sandbox.http.get(f"/_sandbox/objects/{object_type}", params={"archived": "true"})
    return list(response.raise_for_status().json()["results"])


def creates(sandbox: Sandbox, object_type: str) -> int:
    """POST requests that create objects (single or batch) the sandbox received."""
    return sum(
        1
        for r in sandbox.requests("POST", f"/crm/v3/objects/{object_type}")
        if str(r["path"]).endswith((object_type, "batch/create", "batch/upsert"))
    )


async def test_aborted_create_is_archived(
    journal: Journal, hubspot: Connector, resolver: Resolver, sandbox: Sandbox, db_url: str
) -> None:
    with transaction(db_url) as (conn, xid):
        hooks = JournalHooks(journal, xid=xid, connector="hubspot")
        rows = [{"email": "rb1@x.io", "firstname": "A"}, {"email": "rb2@x.io", "firstname": "B"}]
        objects = await hubspot.create("contacts", rows, hooks=hooks)
        conn.rollback()
    assert sorted(o["id"] for o in live(sandbox)) == sorted(o.id for o in objects)
    [entry_id] = hooks.entry_ids
    report = await resolver.resolve(hooks.entry_ids)
    assert report.outcomes == {entry_id: Outcome.COMPENSATED}
    assert live(sandbox) == []
    assert sorted(o["id"] for o in archived(sandbox)) == sorted(o.id for o in objects)
    entry = await journal.get(entry_id)
    assert entry is not None and entry.state is S.COMPENSATED
    assert entry.results == tuple(Result(o.id, True) for o in objects)


async def test_committed_create_stays(
    journal: Journal, hubspot: Connector, resolver: Resolver, sandbox: Sandbox, db_url: str
) -> None:
    with transaction(db_url) as (conn, xid):
        hooks = JournalHooks(journal, xid=xid, connector="hubspot")
        [obj] = await hubspot.create("contacts", [{"email": "keep@x.io"}], hooks=hooks)
        conn.commit()
    report = await resolver.resolve_due()
    assert report.outcomes == {hooks.entry_ids[0]: Outcome.COMMITTED}
    assert [o["id"] for o in live(sandbox)] == [obj.id]


async def test_running_transaction_waits(
    journal: Journal, hubspot: Connector, resolver: Resolver, sandbox: Sandbox, db_url: str
) -> None:
    with transaction(db_url) as (conn, xid):
        hooks = JournalHooks(journal, xid=xid, connector="hubspot")
        await hubspot.create("contacts", [{"email": "wait@x.io"}], hooks=hooks)
        report = await resolver.resolve(hooks.entry_ids)
        assert report.outcomes == {hooks.entry_ids[0]: Outcome.WAITING}
        assert len(live(sandbox)) == 1
        conn.rollback()
    report = await resolver.resolve(hooks.entry_ids)
    assert report.outcomes == {hooks.entry_ids[0]: Outcome.COMPENSATED}
    assert live(sandbox) == []


async def _contact(hubspot: Connector, firstname: str) -> str:
    [obj] = await hubspot.create("contacts", [{"email": "up@x.io", "firstname": firstname}])
    return obj.id


async def test_rolled_back_update_is_restored(
    journal: Journal, hubspot: Connector, resolver: Resolver, sandbox: Sandbox, db_url: str
) -> None:
    contact = await _contact(hubspot, "Old")
    with transaction(db_url) as (conn, xid):
        old = {contact: {"firstname": "Old", "lastname": None, "email": "up@x.io"}}
        hooks = JournalHooks(journal, xid=xid, connector="hubspot", previous=old)
        await hubspot.update(
            "contacts", [(contact, {"firstname": "New", "lastname": "Added"})], hooks=hooks
        )
        conn.rollback()
    entry = await journal.get(hooks.entry_ids[0])
    assert entry is not None  # only the properties the call changed are journaled
    assert entry.previous == {contact: {"firstname": "Old", "lastname": None}}
    report = await resolver.resolve(hooks.entry_ids)
    assert report.outcomes == {entry.id: Outcome.COMPENSATED}
    [held] = live(sandbox)
    assert held["properties"]["firstname"] == "Old"
    assert not held["properties"].get("lastname")


async def test_update_changed_since_is_not_restored(
    journal: Journal, hubspot: Connector, resolver: Resolver, sandbox: Sandbox, db_url: str
) -> None:
    contact = await _contact(hubspot, "Old")
    with transaction(db_url) as (conn, xid):
        hooks = JournalHooks(
            journal, xid=xid, connector="hubspot", previous={contact: {"firstname": "Old"}}
        )
        await hubspot.update("contacts", [(contact, {"firstname": "New"})], hooks=hooks)
        # someone else edits the contact at the vendor meanwhile
        await hubspot.update("contacts", [(contact, {"firstname": "Theirs"})])
        conn.rollback()
    patches = len(sandbox.requests("PATCH"))
    report = await resolver.resolve(hooks.entry_ids)
    assert report.outcomes == {hooks.entry_ids[0]: Outcome.CONFLICT}
    [held] = live(sandbox)
    assert held["properties"]["firstname"] == "Theirs"
    assert len(sandbox.requests("PATCH")) == patches  # nothing was written
    entry = await journal.get(hooks.entry_ids[0])
    assert entry is not None and entry.state is S.CONFLICT
    assert entry.last_error is not None and "firstname changed at the vendor" in entry.last_error


async def test_lost_answer_create_is_found_by_email_and_archived(
    journal: Journal, hubspot: Connector, resolver: Resolver, sandbox: Sandbox, db_url: str
) -> None:
    sandbox.fault(status=500, apply=True, match={"method": "POST", "path_regex": "contacts$"})
    with transaction(db_url) as (conn, xid):
        hooks = JournalHooks(journal, xid=xid, connector="hubspot")
        with pytest.raises(ApiError) as raised:
            await hubspot.create("contacts", [{"email": "Lost@X.io"}], hooks=hooks)
        assert raised.value.kind is ErrorKind.OUTCOME_UNKNOWN
        conn.commit()  # committed, yet the statement never applied locally
    [entry_id] = hooks.entry_ids
    assert hooks.states == {entry_id: S.UNKNOWN}
    [orphan] = live(sandbox)
    report = await resolver.resolve(hooks.entry_ids)
    assert report.outcomes == {entry_id: Outcome.COMPENSATED}
    entry = await journal.get(entry_id)
    assert entry is not None and entry.results == (Result(str(orphan["id"]), True),)
    assert live(sandbox) == []
    assert creates(sandbox, "contacts") == 1  # looked up, never created again


async def test_lost_answer_batch_is_matched_by_listing_each_object_once(
    journal: Journal, hubspot: Connector, resolver: Resolver, sandbox: Sandbox, db_url: str
) -> None:
    [other] = await hubspot.create("deals", [{"dealname": "Twin", "amount": "11"}])
    sandbox.fault(status=502, apply=True, match={"path_regex": "deals/batch/create"})
    with transaction(db_url) as (conn, xid):
        hooks = JournalHooks(journal, xid=xid, connector="hubspot")
        twins = [{"dealname": "Twin", "amount": 10}, {"dealname": "Twin", "amount": 10.0}]
        with pytest.raises(ApiError):
            await hubspot.create("deals", twins, hooks=hooks)
        conn.rollback()
    made = [o["id"] for o in live(sandbox, "deals") if o["id"] != other.id]
    assert len(made) == 2
    report = await resolver.resolve(hooks.entry_ids)
    assert set(report.outcomes.values()) == {Outcome.COMPENSATED}
    entry = await journal.get(hooks.entry_ids[0])
    assert entry is not None and entry.results is not None
    assert sorted(str(r.id) for r in entry.results if r is not None) == sorted(made)
    assert [o["id"] for o in live(sandbox, "deals")] == [other.id]  # not the look-alike
    assert creates(sandbox, "deals") == 2  # the look-alike's create and the lost batch


async def test_find_created_pages_and_never_claims_older_objects(
    hubspot: Connector, sandbox: Sandbox
) -> None:
    before = datetime.now(UTC)
    rows = [{"dealname": f"D{i}", "amount": i} for i in range(120)]
    await hubspot.create("deals", rows)
    lost = VendorCall(
        Operation.CREATE,
        "deals",
        (
            {"properties": {"dealname": "D119", "amount": "119"}},
            {"properties": {"dealname": "D5", "amount": "5"}},
            {"properties": {"dealname": "nothing like it"}},
        ),
    )
    found = await hubspot.find_created(lost, before)
    assert [o.properties["dealname"] if o else None for o in found] == ["D119", "D5", None]
    pages = sandbox.requests("GET", "/crm/v3/objects/deals")
    assert len(pages) == 2  # 100 + 20, following paging.next.after
    # objects created well before the call are never taken for its creations
    assert await hubspot.find_created(lost, before + timedelta(hours=1)) == [None] * 3
    by_email = VendorCall(Operation.CREATE, "contacts", ({"properties": {"email": "x@x.io"}},))
    await hubspot.create("contacts", [{"email": "x@x.io"}])
    assert (await hubspot.find_created(by_email, before))[0] is not None
    assert await hubspot.find_created(by_email, before + timedelta(hours=1)) == [None]
    with pytest.raises(ValueError, match="create nothing"):
        await hubspot.find_created(VendorCall(Operation.UPDATE, "deals", ()), before)


async def test_lost_upsert_tells_created_from_updated(
    journal: Journal, hubspot: Connector, resolver: Resolver, sandbox: Sandbox, db_url: str
) -> None:
    existing = await _contact(hubspot, "Before")
    # both attempts (upserts are retried) apply and lose their answer
    sandbox.fault(status=500, apply=True, times=2, match={"path_regex": "batch/upsert"})
    with transaction(db_url) as (conn, xid):
        hooks = JournalHooks(
            journal,
            xid=xid,
            connector="hubspot",
            previous={"up@x.io": {"firstname": "Before"}},
        )
        rows = [{"email": "up@x.io", "firstname": "After"}, {"email": "new@x.io"}]
        with pytest.raises(ApiError):
            await hubspot.upsert("contacts", "email", rows, hooks=hooks)
        conn.rollback()
    report = await resolver.resolve(hooks.entry_ids)
    assert set(report.outcomes.values()) == {Outcome.COMPENSATED}
    [held] = live(sandbox)
    assert held["id"] == existing
    assert held["properties"]["firstname"] == "Before"
    assert [o["properties"]["email"] for o in archived(sandbox)] == ["new@x.io"]


async def test_compensation_failures_are_retried_not_dropped(
    journal: Journal, hubspot: Connector, sandbox: Sandbox, db_url: str
) -> None:
    resolver = Resolver(journal, {"hubspot": hubspot}, settle_s=0, backoff_base_s=0.01)
    with transaction(db_url) as (conn, xid):
        hooks = JournalHooks(journal, xid=xid, connector="hubspot")
        await hubspot.create("contacts", [{"email": "retry@x.io"}], hooks=hooks)
        conn.rollback()
    sandbox.fault(status=503, match={"method": "DELETE"}, times=2)  # both attempts
    report = await resolver.resolve(hooks.entry_ids)
    assert list(report.outcomes.values()) == [Outcome.RETRYING]
    entry = await journal.get(hooks.entry_ids[0])
    assert entry is not None and entry.state is S.COMPENSATING and entry.attempts == 1
    assert entry.last_error is not None and entry.last_error.startswith("unavailable, HTTP 503")
    await asyncio.sleep(0.05)
    report = await resolver.resolve_due()
    assert list(report.outcomes.values()) == [Outcome.COMPENSATED]
    assert live(sandbox) == []


async def test_later_writers_names_the_transactions_that_wrote_an_object_since(
    journal: Journal,
) -> None:
    def vendor_call(op: Operation, *inputs: dict[str, Any]) -> VendorCall:
        return VendorCall(op, "contacts", tuple(inputs))

    async def entry(op: Operation, xid: int, results: Any, *inputs: dict[str, Any]) -> int:
        entry_id = await journal.record_intent(
            vendor_call(op, *inputs), xid=xid, connector="hubspot"
        )
        if results is not None:
            await journal.record_outcome(entry_id, S.APPLIED, results)
        return entry_id

    created = await entry(Operation.CREATE, 10, [Result("9", True)], {"properties": {}})
    await entry(
        Operation.UPDATE, 11, [Result("9", False)], {"id": "9", "properties": {"company": "x"}}
    )
    await entry(Operation.UPSERT, 12, [Result("8", False), None], {"id": "a@x.io"}, {"id": "b"})
    await entry(Operation.ASSOCIATE, 13, [], {"from": "9", "to": "7", "toObjectType": "deals"})
    await entry(Operation.ARCHIVE, 14, [], {"id": "9"})
    await entry(Operation.CREATE, 15, None, {"properties": {}})  # still an intent
    undone = await entry(Operation.UPDATE, 16, [Result("9", False)], {"id": "9"})
    await journal.mark_rolled_back([undone])
    await entry(Operation.UPDATE, 10, [Result("9", False)], {"id": "9"})  # same transaction
    [stored] = [e for e in await journal.list() if e.id == created]
    # An update names the properties it wrote; creates, upserts and archives the
    # object; a write rolled back to a savepoint is named with its entry still open.
    found = await journal.later_writers(stored, ["9", "8", "7"])
    assert {oid: sorted(writes, key=lambda w: w.xid) for oid, writes in found.items()} == {
        "9": [
            LaterWrite(11, frozenset({"company"}), open=True),
            LaterWrite(14, None, open=True),
            LaterWrite(16, None, rolled_back=True, open=True),
        ],
        "8": [LaterWrite(12, None, open=True)],
    }
    assert await journal.later_writers(stored, []) == {}
