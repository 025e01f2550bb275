"""Write exactness under concurrency: several sessions send random UPDATEs, DELETEs and
INSERTs of ``hubspot.contact`` whose row sets are volatile (``random()``, ``ORDER BY
random() LIMIT n``), overlap and move under one another (``company IS NULL``,
``lastname LIKE 'a%'`` while others set those columns; ``UPDATE ... FROM`` and
``DELETE ... USING`` a local table others change), with volatile SET values
(``md5(random()::text)``), in autocommit and in transactions under READ COMMITTED,
REPEATABLE READ and SERIALIZABLE, some committed, some rolled back, some with a savepoint
rolled back. Serialization failures and deadlocks are expected: the transaction is
retried, then given up; so are the errors listed in EXPECTED.

The vendor must hold exactly what the table holds: the run stops at checkpoints, lets
the journal settle and compares the vendor's live objects with the local rows, property
by property (so that a drift is caught before a later write hides it). A journal
conflict (an undo the journal could not make) or any other error fails the test too.
Every statement is logged with its outcome (the ids it returned); on a failure the
round's statements are written to a file, and the statements, journal entries and
proxy log lines about the objects concerned are shown.

The seed is fixed (and printed): it fixes each session's sequence of transactions, the
interleaving is the scheduler's. WRITEPROXY_TEST_SEED overrides it."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import synced_config
from tests.support import ProxyProcess, Sandbox, run_proxy
from tests.synced import (
    SYNCED,
    Harness,
    Run,
    assert_no_drift,
    conflicts,
    harness,
    run_seed,
    settle_or_report,
)

SESSIONS = 4
ROUNDS = 6  # a drift check after each
TRANSACTIONS = 60  # per round, across the sessions
ATTEMPTS = 3  # of a transaction that fails with a serialization failure or a deadlock
TAG = "<tag>"  # replaced by the attempt's own tag in the statements' texts
LASTNAMES = ("adams", "allen", "baker", "brown", "clark", "cole")
ORGS = 5
ISOLATION = {
    None: 3,  # autocommit: one statement
    "READ COMMITTED": 3,
    "REPEATABLE READ": 2,
    "SERIALIZABLE": 2,
}
#: Errors a transaction may end with: they roll it back, nothing else.
RETRIED = {"40001", "40P01"}  # serialization failure, deadlock
EXPECTED = {  # SQLSTATE: what the message must contain ("|": one of)
    "23505": "",  # an INSERT of an email that exists (or is being created)
    # The proxy refuses a volatile row set it cannot pin down: an UPDATE ... FROM whose
    # join matched other rows in the dry run; an ON CONFLICT DO UPDATE whose rows kept
    # changing between its dry runs.
    "0A000": "when evaluated again|kept changing",
}


@pytest.fixture(scope="module")
def unpaced_proxy(
    synced_url: str, sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    """As ``synced_proxy``, without the pacing to HubSpot's published limit (100 calls
    per 10 s), which the sandbox does not enforce: the run makes thousands of calls."""
    tmp = tmp_path_factory.mktemp("unpaced")
    env = synced_config(
        tmp,
        sandbox,
        "read_timeout_s = 2\nten_secondly_wait_s = 0.05\nlocked_wait_s = 0.05\n"
        "rate_limit_requests = 1000000",
    )
    with run_proxy(tmp, "--upstream", synced_url, env=env) as process:
        yield process


@pytest.fixture
def hs(unpaced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(unpaced_proxy, synced_url, sandbox)


# -- random statements -------------------------------------------------------------------


def _where(rng: random.Random, small: bool = False) -> str:
    """A row set of ``hubspot.contact c``: volatile, or overlapping what others change."""
    limit = rng.randint(1, 2 if small else 3)
    if small:  # for DELETEs: a few rows at most, on average
        return rng.choice(
            [
                f"c.id IN (SELECT id FROM hubspot.contact ORDER BY random() LIMIT {limit})",
                "random() < 0.08",
                f"c.lastname LIKE '{rng.choice('abc')}%' AND random() < 0.3",
                "c.company IS NULL AND random() < 0.3",
                "c.id = (SELECT max(id) FROM hubspot.contact)",
                f"c.phone < '{rng.randint(0, 1)}'",
            ]
        )
    return rng.choice(
        [
            f"c.id IN (SELECT id FROM hubspot.contact ORDER BY random() LIMIT {limit})",
            f"random() < {rng.choice([0.1, 0.3, 0.5])}",
            "c.company IS NULL",
            f"c.lastname LIKE '{rng.choice('abc')}%'",
            f"c.phone < '{rng.randint(1, 9)}'",
            "c.email = (SELECT min(email) FROM hubspot.contact)",
            "c.company IS NOT NULL AND random() < 0.3",
            "c.lastname IS NULL OR c.firstname IS NULL",
        ]
    )


#: SET expressions per column; volatile, constant, NULL, or computed from the row.
SETS = {
    "company": ["md5(random()::text)", "NULL", f"'c-{TAG}'", "upper(c.company)"],
    "lastname": ["NULL", *(f"'{name}'" for name in LASTNAMES)],
    "phone": ["(floor(random() * 1000))::int::text", "NULL", "length(c.email)::text"],
    "firstname": [f"'f-{TAG}'", "left(coalesce(c.firstname, '') || 'x', 8)", "NULL"],
}


def _set(rng: random.Random) -> str:
    columns = rng.sample(sorted(SETS), rng.choice([1, 1, 2, 3]))
    return ", ".join(f"{column} = {rng.choice(SETS[column])}" for column in columns)


def _returning(rng: random.Random) -> str:
    return " RETURNING c.id" if rng.random() < 0.85 else ""


def _update(rng: random.Random) -> str:
    shape = rng.choice(["plain", "plain", "plain", "from", "from_volatile", "from_name"])
    if shape == "plain":
        sql = f"UPDATE hubspot.contact c SET {_set(rng)} WHERE {_where(rng)}"
    elif shape == "from":  # the SET value comes from a local table others change
        sql = (
            "UPDATE hubspot.contact c SET company = o.name FROM public.orgs o "
            f"WHERE o.id = {rng.randint(1, ORGS)} AND ({_where(rng)})"
        )
    elif shape == "from_volatile":  # one row, a different one each time it is evaluated
        sql = (
            "UPDATE hubspot.contact c SET company = o.name, phone = o.id::text "
            "FROM (SELECT id, name FROM public.orgs ORDER BY random() LIMIT 1) o "
            f"WHERE {_where(rng)}"
        )
    else:  # the row set is the join with a local table others change
        sql = (
            "UPDATE hubspot.contact c SET phone = o.id::text, lastname = "
            f"'{rng.choice(LASTNAMES)}' FROM public.orgs o WHERE c.company = o.name"
        )
    return sql + _returning(rng)


def _delete(rng: random.Random) -> str:
    if rng.random() < 0.2:
        sql = (
            "DELETE FROM hubspot.contact c USING public.orgs o "
            f"WHERE c.company = o.name AND o.id = {rng.randint(1, ORGS)}"
        )
    else:
        sql = f"DELETE FROM hubspot.contact c WHERE {_where(rng, small=True)}"
    return sql + _returning(rng)


def _insert(rng: random.Random) -> str:
    shape = rng.choice(["values", "values", "series", "org", "duplicate", "upsert", "upsert_new"])
    returning = " RETURNING id" if rng.random() < 0.85 else ""
    if shape == "values":
        lastnames = [*(f"'{name}'" for name in LASTNAMES), "NULL"]
        companies = ["NULL", f"'c-{TAG}'", "md5(random()::text)"]
        rows = [
            f"('i-{TAG}-{j}@x.io', 'f{j}', {rng.choice(lastnames)}, '{rng.randint(0, 999)}', "
            f"{rng.choice(companies)})"
            for j in range(rng.randint(1, 3))
        ]
        return (
            "INSERT INTO hubspot.contact (email, firstname, lastname, phone, company) VALUES "
            + ", ".join(rows)
            + returning
        )
    if shape == "series":
        return (
            "INSERT INTO hubspot.contact (email, lastname, company) "
            f"SELECT 'g-{TAG}-' || g || '@x.io', "
            "(ARRAY['adams', 'baker', 'clark'])[1 + floor(random() * 3)::int], "
            f"md5(random()::text) FROM generate_series(1, {rng.randint(1, 3)}) g" + returning
        )
    if shape == "org":
        return (
            "INSERT INTO hubspot.contact (email, company) "
            f"SELECT 'o-{TAG}@x.io', name FROM public.orgs ORDER BY random() LIMIT 1" + returning
        )
    if shape == "duplicate":  # PostgreSQL's own 23505, before any API call
        return (
            "INSERT INTO hubspot.contact (email, firstname) "
            "SELECT email, 'dup' FROM hubspot.contact ORDER BY random() LIMIT 1" + returning
        )
    if shape == "upsert":  # updates a random existing contact (or inserts nothing)
        return (
            "INSERT INTO hubspot.contact (email, company) "
            f"SELECT email, 'u-{TAG}' FROM hubspot.contact ORDER BY random() LIMIT 1 "
            "ON CONFLICT (email) DO UPDATE SET company = EXCLUDED.company, "
            "phone = (floor(random() * 1000))::int::text" + returning
        )
    return (
        "INSERT INTO hubspot.contact (email, company) "
        f"VALUES ('u-{TAG}@x.io', md5(random()::text)) "
        "ON CONFLICT (email) DO UPDATE SET company = EXCLUDED.company" + returning
    )


def _local(rng: random.Random) -> str:
    """A pass-through write of the local table the synced statements join."""
    org = rng.randint(1, ORGS)
    return rng.choice(
        [
            f"UPDATE public.orgs SET name = 'org-{TAG}' WHERE id = {org}",
            f"UPDATE public.orgs SET name = (SELECT company FROM hubspot.contact "
            f"WHERE company IS NOT NULL ORDER BY random() LIMIT 1) WHERE id = {org}",
        ]
    )


def _statement(rng: random.Random) -> str:
    maker = rng.choices([_update, _delete, _insert, _local], weights=[50, 15, 25, 10])[0]
    return maker(rng)


@dataclass
class Transaction:
    isolation: str | None  # None: one statement in autocommit
    statements: list[str]
    commit: bool

    @staticmethod
    def draw(rng: random.Random) -> Transaction:
        isolation = rng.choices(list(ISOLATION), weights=list(ISOLATION.values()))[0]
        if isolation is None:
            return Transaction(None, [_statement(rng)], True)
        statements: list[str] = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.12:  # a statement under a savepoint, undone or kept
                end = rng.choice(["ROLLBACK TO SAVEPOINT s", "RELEASE SAVEPOINT s"])
                statements += ["SAVEPOINT s", _statement(rng), end]
            else:
                statements.append(_statement(rng))
        return Transaction(isolation, statements, rng.random() < 0.65)

    def texts(self, tag: str) -> list[str]:
        body = [s.replace(TAG, tag) for s in self.statements]
        if self.isolation is None:
            return body
        return [f"BEGIN ISOLATION LEVEL {self.isolation}", *body, self._end]

    @property
    def _end(self) -> str:
        return "COMMIT" if self.commit else "ROLLBACK"


# -- the run -----------------------------------------------------------------------------


@dataclass
class Logged:
    session: int
    tag: str
    isolation: str | None
    sql: str
    outcome: str  # "ids [...]", "OK <tag>" or "ERROR <sqlstate>: <message>"
    ids: tuple[str, ...] = ()


@dataclass
class Session:
    index: int
    rng: random.Random  # the transactions
    jitter: random.Random  # the pauses, which depend on how the statements went
    conn: psycopg.Connection | None = None


class ExactnessRun(Run):
    """The run's state, with the log of every statement and the unexpected errors."""

    def __init__(self, url: str, seed: int, transactions: int, round_: int) -> None:
        super().__init__(url, seed, transactions)
        self.round = round_  # in the statements' tags, which make emails unique
        self.log: list[Logged] = []
        self.unexpected: list[Logged] = []

    def record(self, entry: Logged, unexpected: bool = False) -> None:
        with self.lock:
            self.log.append(entry)
            if unexpected:
                self.unexpected.append(entry)


def _expected(error: psycopg.Error) -> bool:
    state = error.sqlstate or ""
    if state in RETRIED:
        return True
    if state not in EXPECTED:
        return False
    pattern = EXPECTED[state]
    return not pattern or any(p in str(error) for p in pattern.split("|"))


def _execute(
    session: Session, run: ExactnessRun, tx: Transaction, tag: str, sql: str
) -> str | None:
    """Run and log one statement; returns the SQLSTATE it failed with."""
    conn = session.conn
    assert conn is not None
    try:
        cursor = conn.execute(sql)
    except psycopg.Error as error:
        outcome = f"ERROR {error.sqlstate}: {(str(error).splitlines() or [''])[0]}"
        logged = Logged(session.index, tag, tx.isolation, sql, outcome)
        run.record(logged, unexpected=not _expected(error))
        return error.sqlstate or "?"
    ids: tuple[str, ...] = ()
    if cursor.description is not None and "RETURNING" in sql:
        ids = tuple(str(row[0]) for row in cursor.fetchall())
    outcome = f"ids {list(ids)}" if ids else f"OK {cursor.statusmessage}"
    run.record(Logged(session.index, tag, tx.isolation, sql, outcome, ids))
    return None


def _attempt(session: Session, run: ExactnessRun, tx: Transaction, tag: str) -> str | None:
    """One attempt at ``tx``; returns the SQLSTATE it failed with (then rolled back)."""
    for sql in tx.texts(tag):
        if tx.isolation is not None and session.jitter.random() < 0.3:
            time.sleep(session.jitter.random() * 0.01)  # let the others interleave
        failed = _execute(session, run, tx, tag, sql)
        if failed is not None:
            conn = session.conn
            if tx.isolation is not None and conn is not None and not conn.broken:
                _execute(session, run, tx, tag, "ROLLBACK")
            return failed
    return None


def _session(session: Session, run: ExactnessRun) -> None:
    while (n := run.next_index()) is not None:
        tx = Transaction.draw(session.rng)
        run.note(tx.isolation or "autocommit")
        for attempt in range(ATTEMPTS):
            if session.conn is None or session.conn.closed or session.conn.broken:
                session.conn = psycopg.connect(run.url, autocommit=True, connect_timeout=5)
                session.conn.execute("SET deadlock_timeout = '50ms'")
            tag = f"{run.round}-{session.index}-{n}" + (f"r{attempt}" if attempt else "")
            failed = _attempt(session, run, tx, tag)
            if failed is None:
                run.note("committed" if tx.commit else "rolled back")
                break
            run.note(f"error {failed}")
            if failed not in RETRIED:
                break


def _seed_rows(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO public.orgs (name) SELECT 'org-' || g FROM generate_series(1, %s) g",
            (ORGS,),
        )
        conn.execute(
            "INSERT INTO hubspot.contact (email, firstname, lastname, phone, company) "
            "SELECT 'seed-' || g || '@x.io', CASE WHEN g % 3 > 0 THEN 'f' || g END, "
            "(ARRAY['adams', 'allen', 'baker', 'brown', 'clark', 'cole'])[1 + g % 6], "
            "(g * 37 % 1000)::text, CASE WHEN g % 4 = 0 THEN NULL "
            "WHEN g % 4 = 1 THEN 'org-' || (g % 5 + 1) ELSE md5(g::text) END "
            "FROM generate_series(1, 16) g"
        )


def _check(hs: Harness, run: ExactnessRun, label: str, transcript: Path) -> None:
    """Settle the journal, then: no drift, no conflict, no unexpected error. On a
    failure the round's statements are written to ``transcript``."""
    settle_or_report(hs.direct_url, 30, hs.proxy)
    problems = []
    try:
        assert_no_drift(hs.direct_url, hs.sandbox)
    except AssertionError as drift:
        problems.append(f"{drift}\n{_explain(hs, run, _drifting(hs))}")
    if found := conflicts(hs.direct_url):
        problems.append(f"journal conflicts: {found}\n{_explain(hs, run, _written(hs, found))}")
    if run.unexpected:
        problems.append("unexpected errors:\n" + "\n".join(_line(e) for e in run.unexpected[:20]))
    if problems:
        transcript.write_text("\n".join(_line(e) for e in run.log) + "\n")
    assert not problems, (
        f"seed {run.seed}, {label} (its statements: {transcript}):\n" + "\n\n".join(problems)
    )


def _drifting(hs: Harness) -> set[str]:
    """The contacts whose local row and vendor object differ (or exist on one side)."""
    _, object_type, columns = SYNCED[0]
    with psycopg.connect(hs.direct_url, autocommit=True) as conn:
        rows = conn.execute(f"SELECT id, {', '.join(columns)} FROM hubspot.contact").fetchall()
    local = {row[0]: tuple(v or None for v in row[1:]) for row in rows}
    remote = {
        str(o["id"]): tuple(o["properties"].get(c) or None for c in columns)  # type: ignore[union-attr]
        for o in hs.sandbox.objects(object_type)
    }
    return {i for i in local.keys() | remote.keys() if local.get(i) != remote.get(i)}


def _written(hs: Harness, entries: list[tuple[object, ...]]) -> set[str]:
    """The objects these journal entries wrote."""
    with psycopg.connect(hs.direct_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT o.id FROM writeproxy.journal j, LATERAL (SELECT i ->> 'id' "
            "FROM jsonb_array_elements(j.inputs) i UNION SELECT r ->> 'id' FROM "
            "jsonb_array_elements(COALESCE(j.results, '[]')) r "
            "WHERE jsonb_typeof(r) = 'object') o(id) WHERE j.id = ANY(%s) AND o.id IS NOT NULL",
            ([entry[0] for entry in entries],),
        ).fetchall()
    return {str(row[0]) for row in rows}


def _line(entry: Logged) -> str:
    where = f"s{entry.session} {entry.tag} {entry.isolation or 'autocommit'}"
    return f"[{where}] {entry.sql} -> {entry.outcome}"


def _explain(hs: Harness, run: ExactnessRun, ids: set[str]) -> str:
    """The transactions that wrote these contacts, their journal entries and what the
    proxy logged about those."""
    tags = {e.tag for e in run.log if ids & set(e.ids)}
    lines = [f"contacts {sorted(ids)}; the transactions that returned them:"]
    lines += [_line(e) for e in run.log if e.tag in tags][-80:]
    with psycopg.connect(hs.direct_url, autocommit=True) as conn:
        entries = conn.execute(
            "SELECT id, operation, state, xid::text, pg_xact_status(xid), rolled_back, "
            "inputs::text, results::text, last_error FROM writeproxy.journal "
            "WHERE EXISTS (SELECT 1 FROM unnest(%s::text[]) i "
            "WHERE inputs::text LIKE '%%\"' || i || '\"%%' "
            "OR results::text LIKE '%%\"' || i || '\"%%') ORDER BY id",
            (sorted(ids),),
        ).fetchall()
    lines.append("journal entries:")
    lines += [str(entry) for entry in entries[-40:]]
    named = tuple(f"journal entry {entry[0]} " for entry in entries[-40:])
    lines.append("what the proxy logged about them:")
    lines += [
        line for line in hs.proxy.log().splitlines() if line.split(": ", 1)[-1].startswith(named)
    ]
    return "\n".join(lines)


def test_random_volatile_overlapping_writes_end_without_drift(hs: Harness, tmp: Path) -> None:
    seed = run_seed(20261201)
    _seed_rows(hs)
    sessions = [
        Session(i, random.Random(seed * 100 + i), random.Random(-seed * 100 - i))
        for i in range(SESSIONS)
    ]
    tallies: Counter[str] = Counter()
    runs: list[ExactnessRun] = []
    try:
        for round_ in range(ROUNDS):
            run = ExactnessRun(hs.url, seed, TRANSACTIONS, round_ + 1)
            runs.append(run)
            threads = [
                threading.Thread(target=_session, args=(s, run), daemon=True) for s in sessions
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            assert not any(t.is_alive() for t in threads), (
                f"seed {seed}: sessions still running after 120 s; last statements:\n"
                + "\n".join(_line(e) for e in run.log[-20:])
            )
            tallies += run.outcomes
            _check(hs, run, f"round {round_ + 1} of {ROUNDS}", tmp / f"round-{round_ + 1}.sql")
    finally:
        for session in sessions:
            if session.conn is not None:
                session.conn.close()
    print(dict(tallies))
    statements = Counter(
        e.sql.split()[0] for r in runs for e in r.log if "hubspot.contact c" in e.sql and e.ids
    )
    print(dict(statements))
    # The run did what it is for: transactions at every isolation level, committed and
    # rolled back; synced statements that changed rows (ids returned).
    assert tallies["committed"] > 60 and tallies["rolled back"] > 20, tallies
    assert all(tallies[level] > 10 for level in ISOLATION if level is not None), tallies
    assert statements["UPDATE"] > 50 and statements["DELETE"] > 10, statements
    # The harness then checks the no-drift invariant once more.
