"""Helpers for synced-write tests: a clean slate per test and the no-drift invariant."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from tests.support import ProxyProcess, Sandbox

#: Local synced table, vendor object type, and the columns compared for drift.
SYNCED = [
    ("contact", "contacts", ("email", "firstname", "lastname", "phone", "company")),
    ("deal", "deals", ("dealname", "dealstage", "pipeline")),
]


@dataclass
class Harness:
    proxy: ProxyProcess
    direct_url: str
    sandbox: Sandbox

    @property
    def url(self) -> str:
        return self.proxy.url(db="synced")

    def local(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run ``sql`` directly, as a sync tool would (replica mode: the guard trigger
        on synced tables does not fire, as for logical replication)."""
        with psycopg.connect(self.direct_url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            return conn.execute(sql, params).fetchall()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the proxy's journal has resolved every entry (see settle)."""
        settle(self.direct_url, timeout)


def clean(direct_url: str, sandbox: Sandbox) -> None:
    sandbox.reset()
    with psycopg.connect(direct_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # as a sync tool
        conn.execute(
            "TRUNCATE hubspot.contact, hubspot.deal, hubspot.associations_contact_deal, "
            "public.users, public.orgs RESTART IDENTITY CASCADE"
        )
        if conn.execute("SELECT to_regclass('writeproxy.journal')").fetchone() != (None,):
            conn.execute("TRUNCATE writeproxy.journal")


#: Journal states the proxy has not finished with (see proxy/journal/model.py).
OPEN_STATES = ("intent", "applied", "unknown", "compensating")


def open_entries(direct_url: str) -> int:
    with psycopg.connect(direct_url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('writeproxy.journal')").fetchone() == (None,):
            return 0
        row = conn.execute(
            "SELECT count(*) FROM writeproxy.journal WHERE state = ANY(%s)", (list(OPEN_STATES),)
        ).fetchone()
        return int(row[0]) if row else 0


def settle(direct_url: str, timeout: float = 10.0) -> None:
    """Wait until every journal entry is resolved: compensation after a rollback or a
    dropped client is asynchronous (README: within 2 s), so tests that look at the
    vendor right after one wait for it here. Fails if entries stay open."""
    deadline = time.monotonic() + timeout
    while (count := open_entries(direct_url)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if count:
        with psycopg.connect(direct_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT id, operation, state, xid::text, pg_xact_status(xid), rolled_back, "
                "attempts, next_attempt_at - now(), claimed_by, claimed_until - now(), "
                "last_error FROM writeproxy.journal WHERE state = ANY(%s)",
                (list(OPEN_STATES),),
            ).fetchall()
            # Later entries that wrote the same objects: an undo waits for their verdict.
            related = conn.execute(
                "SELECT l.id, l.operation, l.state, l.xid::text, pg_xact_status(l.xid), "
                "l.rolled_back, l.results::text, l.inputs::text FROM writeproxy.journal o "
                "JOIN writeproxy.journal l ON l.id > o.id AND (l.results::text LIKE "
                "'%%' || (o.results -> 0 ->> 'id') || '%%' OR l.inputs::text LIKE "
                "'%%' || (o.results -> 0 ->> 'id') || '%%') WHERE o.state = ANY(%s)",
                (list(OPEN_STATES),),
            ).fetchall()
        raise AssertionError(
            f"{count} journal entries still open after {timeout}s: {rows}; related: {related}"
        )


def settle_or_report(direct_url: str, timeout: float, *proxies: ProxyProcess) -> None:
    """``settle``; when it cannot, fail with the proxies' last journal log lines."""
    try:
        settle(direct_url, timeout)
    except AssertionError as failed:
        journal_lines = [
            line for proxy in proxies for line in proxy.log().splitlines() if "journal" in line
        ]
        raise AssertionError(f"{failed}\nproxy log lines: {journal_lines[-40:]}") from None


def conflicts(direct_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(direct_url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('writeproxy.journal')").fetchone() == (None,):
            return []
        return conn.execute(
            "SELECT id, operation, object_type, last_error FROM writeproxy.journal "
            "WHERE state = 'conflict' ORDER BY id"
        ).fetchall()


def assert_no_drift(direct_url: str, sandbox: Sandbox) -> None:
    """The invariant after every synced-write test: once the journal has settled, the
    local synced tables and the vendor hold exactly the same objects with the same
    values."""
    settle(direct_url)
    with psycopg.connect(direct_url, autocommit=True) as conn:
        for table, object_type, columns in SYNCED:
            rows = conn.execute(f"SELECT id, {', '.join(columns)} FROM hubspot.{table}").fetchall()
            local = {
                row[0]: {c: _norm(v) for c, v in zip(columns, row[1:], strict=True)} for row in rows
            }
            remote = {
                str(obj["id"]): {c: _norm(obj["properties"].get(c)) for c in columns}  # type: ignore[index, union-attr]
                for obj in sandbox.objects(object_type)
            }
            assert local == remote, f"drift in {table}: local={local} vendor={remote}"
        local_pairs = set(
            conn.execute("SELECT contact_id, deal_id FROM hubspot.associations_contact_deal")
        )
        remote_pairs = {
            (edge["fromId"], edge["toId"])
            for edge in sandbox.associations()
            if (edge["fromObjectType"], edge["toObjectType"]) == ("contacts", "deals")
        }
        assert local_pairs == remote_pairs, (
            f"drift in associations: local={local_pairs} vendor={remote_pairs}"
        )


def _norm(value: object) -> str | None:
    return None if value in (None, "") else str(value)


def harness(proxy: ProxyProcess, direct_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    clean(direct_url, sandbox)
    yield Harness(proxy, direct_url, sandbox)
    assert_no_drift(direct_url, sandbox)


# -- randomized runs -------------------------------------------------------------------


def run_seed(default: int) -> int:
    """A randomized test's seed: fixed (``default``) so that a failure can be replayed,
    WRITEPROXY_TEST_SEED overrides it; printed (pytest shows it with a failure)."""
    seed = int(os.environ.get("WRITEPROXY_TEST_SEED", str(default)))
    print(f"seed {seed}")
    return seed


class Run:
    """Shared state of a randomized run over several sessions: the proxy's URL while it
    is up, the budget of transactions, counters of what happened."""

    def __init__(self, url: str, seed: int, transactions: int) -> None:
        self.url = url
        self.seed = seed
        self.transactions = transactions
        self.lock = threading.Lock()
        self.started = 0
        self.up = threading.Event()
        self.up.set()
        self.outcomes: Counter[str] = Counter()

    def next_index(self) -> int | None:
        with self.lock:
            if self.started >= self.transactions:
                return None
            self.started += 1
            return self.started

    def note(self, what: str) -> None:
        with self.lock:
            self.outcomes[what] += 1
