"""Transactions that hold (issue 8): every way a transaction ends without committing —
ROLLBACK, a later failing statement, ROLLBACK TO SAVEPOINT, a failed COMMIT, a client
that dies, a proxy killed with SIGKILL, a vendor that times out after applying —
leaves the vendor equal to the local tables, resolved by the durable journal and
PostgreSQL's verdict on the transaction. Every test ends with the no-drift invariant
(after the journal has settled)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from tests.support import ProxyProcess, Sandbox
from tests.synced import Harness, conflicts, harness, open_entries

SIGNUP_USER = "INSERT INTO public.users (email, first_name) VALUES (%s, %s) RETURNING id"
SIGNUP_CONTACT = (
    "INSERT INTO hubspot.contact (email, firstname, user_id) VALUES (%s, %s, %s) RETURNING id"
)


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


def live_emails(hs: Harness) -> list[str]:
    return sorted(str(o["properties"]["email"]) for o in hs.sandbox.objects())  # type: ignore[index]


def archives(hs: Harness) -> list[dict[str, object]]:
    return [
        r
        for r in hs.sandbox.vendor_requests()
        if r["method"] == "DELETE" or "/batch/archive" in str(r["path"])
    ]


def signup(conn: psycopg.Connection, email: str, name: str = "Ada") -> tuple[int, str]:
    user_id = conn.execute(SIGNUP_USER, (email, name)).fetchone()[0]  # type: ignore[index]
    contact = conn.execute(SIGNUP_CONTACT, (email, name, user_id)).fetchone()[0]  # type: ignore[index]
    return user_id, contact


# -- the client ends the transaction -------------------------------------------------


def test_rollback_compensates_the_create_and_a_retry_succeeds(hs: Harness) -> None:
    with psycopg.connect(hs.url) as conn:
        _, contact = signup(conn, "ada@example.com")
        assert [str(o["id"]) for o in hs.sandbox.objects()] == [contact]
        conn.rollback()
        hs.settle()
        assert hs.sandbox.objects() == []
        # The signup is retried: no 23505 from a leftover vendor contact.
        signup(conn, "ada@example.com")
        conn.commit()
    assert live_emails(hs) == ["ada@example.com"]
    assert hs.local("SELECT count(*) FROM public.users") == [(1,)]


def test_a_later_failing_statement_then_rollback_leaves_no_contact(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute(SIGNUP_USER, ("taken@example.com", "T"))
    with psycopg.connect(hs.url) as conn:
        conn.execute(SIGNUP_CONTACT, ("taken@example.com", "T", None))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(SIGNUP_USER, ("taken@example.com", "T"))  # the app's own duplicate
        conn.rollback()
    hs.settle()
    assert hs.sandbox.objects() == []


@pytest.mark.parametrize("protocol", ["simple", "extended"])
def test_rollback_to_savepoint_compensates_only_what_came_after(hs: Harness, protocol: str) -> None:
    with psycopg.connect(hs.url) as conn:

        def run(sql: str) -> None:
            if protocol == "simple":
                conn.pgconn.exec_(sql.encode())  # a simple Query message
            else:
                conn.execute(sql)  # Parse/Bind/Execute

        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('kept@example.com')")
        run("SAVEPOINT a")
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('undone@example.com')")
        run("SAVEPOINT b")
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('undone2@example.com')")
        run("RELEASE SAVEPOINT b")
        run("ROLLBACK TO SAVEPOINT a")
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('after@example.com')")
        conn.commit()
    hs.settle()
    assert live_emails(hs) == ["after@example.com", "kept@example.com"]


def test_nested_transactions_in_psycopg(hs: Harness) -> None:
    """psycopg's nested ``transaction()`` blocks are savepoints."""
    with psycopg.connect(hs.url, autocommit=True) as conn, conn.transaction():
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('outer@example.com')")
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('inner@example.com')")
            conn.execute(SIGNUP_USER, ("u@example.com", "U"))
            conn.execute(SIGNUP_USER, ("u@example.com", "U"))
        with conn.transaction():
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('inner2@example.com')")
    hs.settle()
    assert live_emails(hs) == ["inner2@example.com", "outer@example.com"]


def test_update_rolled_back_restores_the_old_value(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO hubspot.contact (email, company, phone) "
            "VALUES ('a@example.com', 'Old', '1')"
        )
    with psycopg.connect(hs.url) as conn:
        conn.execute("UPDATE hubspot.contact SET company = 'New' WHERE email = 'a@example.com'")
        [obj] = hs.sandbox.objects()
        assert obj["properties"]["company"] == "New"  # type: ignore[index]
        conn.rollback()
    hs.settle()
    [obj] = hs.sandbox.objects()
    assert obj["properties"]["company"] == "Old"  # type: ignore[index]
    assert obj["properties"]["phone"] == "1"  # type: ignore[index]


def test_rollback_does_not_clobber_what_someone_else_changed_since(hs: Harness) -> None:
    """Compensation restores only the properties the statement changed, and only if the
    vendor still holds what the statement set; otherwise it leaves the value and reports
    a conflict in the journal."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        contact = conn.execute(
            "INSERT INTO hubspot.contact (email, company, phone) "
            "VALUES ('a@example.com', 'Old', '1') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
    with psycopg.connect(hs.url) as conn:
        conn.execute("UPDATE hubspot.contact SET company = 'Mine' WHERE email = 'a@example.com'")
        # Meanwhile, someone edits the contact in HubSpot itself.
        hs.sandbox.http.patch(
            f"/crm/v3/objects/contacts/{contact}",
            json={"properties": {"company": "Theirs", "phone": "2"}},
            headers={"Authorization": "Bearer sandbox-token"},
        ).raise_for_status()
        conn.rollback()
    hs.settle()
    [obj] = hs.sandbox.objects()
    assert obj["properties"]["company"] == "Theirs"  # type: ignore[index]
    assert obj["properties"]["phone"] == "2"  # type: ignore[index]
    assert [c[1] for c in conflicts(hs.direct_url)] == ["update"]
    # The vendor is the truth for a value someone else set: bring the local row along,
    # as the sync would, so the drift check holds.
    hs.local("UPDATE hubspot.contact SET company = 'Theirs', phone = '2' RETURNING id")


def test_delete_rolled_back_never_reaches_the_vendor(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('keep@example.com')")
    hs.sandbox.http.delete("/_sandbox/requests").raise_for_status()
    with psycopg.connect(hs.url) as conn:
        cur = conn.execute("DELETE FROM hubspot.contact WHERE email = 'keep@example.com'")
        assert cur.rowcount == 1
        assert hs.local("SELECT count(*) FROM hubspot.contact") == [(1,)]  # not committed
        conn.rollback()
    hs.settle()
    assert archives(hs) == []
    assert live_emails(hs) == ["keep@example.com"]


def test_delete_committed_archives_at_commit(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('gone@example.com')")
    hs.sandbox.http.delete("/_sandbox/requests").raise_for_status()
    with psycopg.connect(hs.url) as conn:
        conn.execute("DELETE FROM hubspot.contact WHERE email = 'gone@example.com'")
        assert archives(hs) == []  # deferred to COMMIT
        conn.commit()
    assert len(archives(hs)) == 1
    assert hs.sandbox.objects() == []


def test_failed_archive_fails_the_commit(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('stay@example.com')")
    with psycopg.connect(hs.url) as conn:
        user = conn.execute(SIGNUP_USER, ("u@example.com", "U")).fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('new@example.com')")
        conn.execute("DELETE FROM hubspot.contact WHERE email = 'stay@example.com'")
        hs.sandbox.fault(match={"method": "DELETE"}, status=403, times=5)
        hs.sandbox.fault(match={"path_regex": "batch/archive"}, status=403, times=5)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.commit()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    hs.sandbox.http.delete("/_sandbox/faults").raise_for_status()
    hs.settle()
    assert live_emails(hs) == ["stay@example.com"]  # the create was compensated too
    assert hs.local("SELECT count(*) FROM public.users WHERE id = %s", user) == [(0,)]


def test_commit_failing_on_a_deferred_constraint_compensates(hs: Harness) -> None:
    with psycopg.connect(hs.direct_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.signup_audit (user_id integer "
            "REFERENCES public.users (id) DEFERRABLE INITIALLY DEFERRED)"
        )
    try:
        with psycopg.connect(hs.url) as conn:
            signup(conn, "ada@example.com")
            conn.execute("INSERT INTO public.signup_audit VALUES (999999)")  # checked at COMMIT
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.commit()
        hs.settle()
        assert hs.sandbox.objects() == []
    finally:
        with psycopg.connect(hs.direct_url, autocommit=True) as conn:
            conn.execute("DROP TABLE public.signup_audit")


def test_commit_failing_with_a_serialization_failure_compensates(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.orgs (name) VALUES ('acme')")
    a = psycopg.connect(hs.url)
    b = psycopg.connect(hs.url)
    try:
        for conn in (a, b):
            conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            conn.execute("SELECT count(*) FROM public.orgs").fetchone()
        a.execute("INSERT INTO public.orgs (name) VALUES ('a')")
        b.execute("INSERT INTO hubspot.contact (email) VALUES ('b@example.com')")
        b.execute("INSERT INTO public.orgs (name) VALUES ('b')")
        a.commit()
        with pytest.raises(psycopg.errors.SerializationFailure):
            b.execute("SELECT count(*) FROM public.orgs").fetchone()
            b.commit()
        b.rollback()
    finally:
        a.close()
        b.close()
    hs.settle()
    assert hs.sandbox.objects() == []


# -- the client goes away ------------------------------------------------------------


def _drop_mid_transaction(url: str, how: str) -> None:
    code = f"""
import os, signal, socket, psycopg
conn = psycopg.connect({url!r})
conn.execute({SIGNUP_USER!r}, ("gone@example.com", "G"))
conn.execute("INSERT INTO hubspot.contact (email) VALUES ('gone@example.com')")
if {how!r} == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sock = socket.socket(fileno=os.dup(conn.fileno()))
sock.shutdown(socket.SHUT_RDWR)
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", code], timeout=30, check=False)


@pytest.mark.parametrize("how", ["kill", "socket-drop"])
def test_client_that_dies_mid_transaction_leaves_nothing(hs: Harness, how: str) -> None:
    _drop_mid_transaction(hs.url, how)
    started = time.monotonic()
    hs.settle()
    assert time.monotonic() - started < 5
    assert hs.sandbox.objects() == []
    assert hs.local("SELECT count(*) FROM public.users") == [(0,)]


# -- the vendor's answer is lost ------------------------------------------------------


def test_create_applied_but_answer_lost_is_compensated_never_duplicated(hs: Harness) -> None:
    hs.sandbox.fault(
        match={"method": "POST", "path_regex": "objects/contacts$"}, apply=True, delay_ms=2600
    )  # past the proxy's 2 s read timeout
    with psycopg.connect(hs.url) as conn:
        conn.execute(SIGNUP_USER, ("ada@example.com", "Ada"))
        with pytest.raises(psycopg.errors.TransactionResolutionUnknown) as failed:
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('ada@example.com')")
        assert "undoes it" in (failed.value.diag.message_hint or "")
        conn.rollback()
    time.sleep(0.8)  # the sandbox applies the create after its delay
    hs.settle()
    assert hs.sandbox.objects() == []
    creates = [
        r
        for r in hs.sandbox.vendor_requests()
        if r["method"] == "POST" and not str(r["path"]).endswith("/batch/read")
    ]
    assert len(creates) == 1  # never blindly retried (the lookup is a batch read)
    # ... and the signup can be retried at once.
    with psycopg.connect(hs.url) as conn:
        signup(conn, "ada@example.com")
        conn.commit()
    assert live_emails(hs) == ["ada@example.com"]


# -- the proxy is killed -------------------------------------------------------------


def test_proxy_killed_between_api_call_and_commit_resolves_at_restart(
    hs: Harness, killable: tuple[ProxyProcess, Callable[[], ProxyProcess]]
) -> None:
    proxy, start = killable
    conn = psycopg.connect(proxy.url(db="synced"))
    signup(conn, "ada@example.com")
    assert len(hs.sandbox.objects()) == 1
    proxy.stop(signal.SIGKILL)
    conn.close()
    start()
    hs.settle(timeout=10)
    assert hs.sandbox.objects() == []
    assert hs.local("SELECT count(*) FROM public.users") == [(0,)]


def test_proxy_killed_during_the_api_call_resolves_at_restart(
    hs: Harness, killable: tuple[ProxyProcess, Callable[[], ProxyProcess]]
) -> None:
    """Killed while the create is in flight: the journal has only the intent; after the
    restart the entry is looked up at the vendor (by email) and archived."""
    proxy, start = killable
    hs.sandbox.fault(match={"method": "POST", "path_regex": "objects/contacts$"}, delay_ms=1000)
    url = proxy.url(db="synced")

    def client() -> None:
        try:
            with psycopg.connect(url) as conn:
                conn.execute("INSERT INTO hubspot.contact (email) VALUES ('fly@example.com')")
        except psycopg.Error:
            pass

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(0.4)
    proxy.stop(signal.SIGKILL)
    thread.join(10)
    time.sleep(1.0)  # the sandbox finishes the create
    assert len(hs.sandbox.objects()) == 1
    start()
    hs.settle(timeout=15)
    assert hs.sandbox.objects() == []


def test_journal_lists_entries(hs: Harness) -> None:
    with psycopg.connect(hs.url) as conn:
        signup(conn, "ada@example.com")
        conn.rollback()
    hs.settle()
    listed = subprocess.run(
        [sys.executable, "-m", "proxy", "journal", "list", "--upstream", hs.direct_url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WRITEPROXY_CONFIG": ""},
    )
    assert listed.returncode == 0, listed.stderr
    assert "compensated" in listed.stdout and "create" in listed.stdout
    assert "ada@example.com" not in listed.stdout  # no row values
    assert open_entries(hs.direct_url) == 0


# -- transactions that end without a ReadyForQuery in between ---------------------------


def test_two_transactions_in_one_pipeline(hs: Harness) -> None:
    """COMMIT and BEGIN before one Sync: each statement's transaction id tells them apart."""
    with psycopg.connect(hs.url, autocommit=True) as conn, conn.pipeline():
        conn.execute("BEGIN")
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('a@example.com')")
        conn.execute("COMMIT")
        conn.execute("BEGIN")
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('b@example.com')")
        conn.execute("ROLLBACK")
    hs.settle()
    assert live_emails(hs) == ["a@example.com"]


@pytest.mark.parametrize(
    ("statements", "kept"),
    [
        (
            [
                "UPDATE hubspot.contact SET company = 'x' WHERE false",
                "ROLLBACK AND CHAIN",
                "INSERT INTO hubspot.contact (email) VALUES ('c@example.com')",
                "COMMIT",
            ],
            ["c@example.com"],
        ),
        (
            [
                "UPDATE hubspot.contact SET company = 'x' WHERE false",
                "COMMIT AND CHAIN",
                "INSERT INTO hubspot.contact (email) VALUES ('c@example.com')",
                "ROLLBACK",
            ],
            [],
        ),
        (
            [
                "INSERT INTO hubspot.contact (email) VALUES ('x@example.com')",
                "ROLLBACK AND CHAIN",
                "INSERT INTO hubspot.contact (email) VALUES ('c@example.com')",
                "COMMIT",
            ],
            ["c@example.com"],
        ),
        (
            [
                "INSERT INTO hubspot.contact (email) VALUES ('x@example.com')",
                "COMMIT AND CHAIN",
                "INSERT INTO hubspot.contact (email) VALUES ('c@example.com')",
                "ROLLBACK",
            ],
            ["x@example.com"],
        ),
    ],
    ids=["noop-rollback-chain", "noop-commit-chain", "rollback-chain", "commit-chain"],
)
def test_chained_transactions(hs: Harness, statements: list[str], kept: list[str]) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("BEGIN")
        for sql in statements:
            conn.execute(sql)
    hs.settle()
    assert live_emails(hs) == kept


def test_aborted_transaction_commit_and_chain(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('x@example.com')")
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1/0")
        conn.execute("COMMIT AND CHAIN")  # rolls back, a new transaction starts
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('c@example.com')")
        conn.execute("COMMIT")
    hs.settle()
    assert live_emails(hs) == ["c@example.com"]


def test_pipeline_is_atomic_when_plain_statements_come_first(hs: Harness) -> None:
    with (
        psycopg.connect(hs.url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.UniqueViolation),
        conn.pipeline(),
    ):
        conn.execute(SIGNUP_USER, ("u@example.com", "U"))
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('p@example.com')")
        conn.execute(SIGNUP_USER, ("u@example.com", "U"))  # fails: all of it is undone
    hs.settle()
    assert hs.sandbox.objects() == []
    assert hs.local("SELECT count(*) FROM public.users") == [(0,)]


def test_clients_own_begin_in_the_pipeline_keeps_its_transaction_open(hs: Harness) -> None:
    """pgjdbc sends BEGIN in the same batch as the first statement: the proxy must not
    commit the client's block at the Sync."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with conn.pipeline():
            conn.execute("BEGIN")
            conn.execute(SIGNUP_USER, ("u@example.com", "U"))
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('p@example.com')")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.execute("ROLLBACK")
    hs.settle()
    assert hs.sandbox.objects() == []
    assert hs.local("SELECT count(*) FROM public.users") == [(0,)]


# -- an undo never overwrites a later committed write -----------------------------------


def test_late_restore_does_not_overwrite_a_later_committed_write_of_the_same_value(
    hs: Harness,
) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email, company) VALUES ('s@example.com', 'Old')")
    # The compensation's compare-first read fails for a while: the restore comes late.
    hs.sandbox.fault(
        match={"method": "GET", "path_regex": "/crm/v3/objects/contacts/"}, status=503, times=6
    )
    with psycopg.connect(hs.url) as conn:
        conn.execute("UPDATE hubspot.contact SET company = 'New' WHERE email = 's@example.com'")
        conn.rollback()
        conn.execute("UPDATE hubspot.contact SET company = 'New' WHERE email = 's@example.com'")
        conn.commit()
    hs.settle(timeout=20)
    [obj] = hs.sandbox.objects()
    assert obj["properties"]["company"] == "New"  # type: ignore[index]


def test_upsert_adopting_an_uncommitted_create_keeps_the_object(hs: Harness) -> None:
    """Session A creates a contact and has not committed; session B upserts the same
    email: the vendor updates A's object and B's local insert waits on A. A rolls back:
    the object is B's now and must not be archived."""
    a = psycopg.connect(hs.url)
    try:
        a.execute("INSERT INTO hubspot.contact (email, company) VALUES ('race@example.com', 'A')")
        result: dict[str, object] = {}

        def upsert() -> None:
            with psycopg.connect(hs.url, autocommit=True) as b:
                result["id"] = b.execute(
                    "INSERT INTO hubspot.contact (email, company) VALUES ('race@example.com', 'B') "
                    "ON CONFLICT (email) DO UPDATE SET company = EXCLUDED.company RETURNING id"
                ).fetchone()[0]  # type: ignore[index]

        thread = threading.Thread(target=upsert)
        thread.start()
        time.sleep(1.0)  # B has called the vendor and waits on A's unique index entry
        a.rollback()
        thread.join(20)
    finally:
        a.close()
    hs.settle(timeout=20)
    [obj] = hs.sandbox.objects()
    assert obj["id"] == result["id"]
    assert obj["properties"]["company"] == "B"  # type: ignore[index]


# -- archives at COMMIT: edges -----------------------------------------------------------


def test_prepare_transaction_after_a_delete_is_refused(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('p@example.com')")
    with psycopg.connect(hs.url) as conn:
        conn.execute("DELETE FROM hubspot.contact WHERE email = 'p@example.com'")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("PREPARE TRANSACTION 'wp1'")
        conn.rollback()
    hs.settle()
    assert archives(hs) == []
    assert live_emails(hs) == ["p@example.com"]


def test_commit_finishes_when_the_client_dies_during_the_archive(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('k@example.com')")
    hs.sandbox.fault(match={"method": "DELETE"}, delay_ms=1500)
    code = f"""
import os, signal, threading, psycopg
conn = psycopg.connect({hs.url!r})
conn.execute("DELETE FROM hubspot.contact WHERE email = 'k@example.com'")
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
conn.commit()
"""
    subprocess.run([sys.executable, "-c", code], timeout=30, check=False)
    time.sleep(1.5)
    hs.settle()
    assert hs.sandbox.objects() == []
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]


def test_archive_whose_answer_is_lost_still_commits(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('l@example.com')")
    hs.sandbox.fault(match={"method": "DELETE"}, status=504, apply=True, times=10)
    with psycopg.connect(hs.url) as conn:
        conn.execute("DELETE FROM hubspot.contact WHERE email = 'l@example.com'")
        conn.commit()  # the objects are gone at the vendor: the COMMIT goes through
    hs.sandbox.http.delete("/_sandbox/faults").raise_for_status()
    hs.settle()
    assert hs.sandbox.objects() == []
    assert conflicts(hs.direct_url) == []


# -- the journal itself in trouble ------------------------------------------------------


def test_a_locked_journal_fails_the_statement_before_the_vendor_call(hs: Harness) -> None:
    locker = psycopg.connect(hs.direct_url)
    try:
        locker.execute("LOCK TABLE writeproxy.journal IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with (
            psycopg.connect(hs.url, autocommit=True) as conn,
            pytest.raises(psycopg.errors.CannotConnectNow) as failed,
        ):
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('j@example.com')")
        assert time.monotonic() - started < 15
        assert "journal" in (failed.value.diag.message_hint or "")
    finally:
        locker.rollback()
        locker.close()
    assert hs.sandbox.vendor_requests() == []


def test_a_dropped_journal_is_created_again(hs: Harness) -> None:
    """Dropping the proxy's schema drops the guard triggers with their function: the
    recovery loop installs them again; until then an INSERT fails before any API call
    (its dry run has no placeholder id), and nothing is sent."""
    with psycopg.connect(hs.direct_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA writeproxy CASCADE")
    deadline = time.monotonic() + 15
    while hs.local(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'hubspot.contact'::regclass "
        "AND tgname LIKE '%%writeproxy_guard%%'"
    ) != [(2,)]:
        assert time.monotonic() < deadline, "the guard was not installed again"
        time.sleep(0.2)
    with psycopg.connect(hs.url) as conn:
        signup(conn, "ada@example.com")
        conn.rollback()
    hs.settle()
    assert hs.sandbox.objects() == []


@pytest.mark.parametrize("in_block", [False, True])
def test_deleting_a_contact_drops_its_association_rows(hs: Harness, in_block: bool) -> None:
    """HubSpot removes an archived object's associations; the local rows follow."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        contact = conn.execute(
            "INSERT INTO hubspot.contact (email) VALUES ('as@example.com') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        deal = conn.execute(
            "INSERT INTO hubspot.deal (dealname) VALUES ('D') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO hubspot.associations_contact_deal (contact_id, deal_id) VALUES (%s, %s)",
            (contact, deal),
        )
    with psycopg.connect(hs.url, autocommit=not in_block) as conn:
        conn.execute("DELETE FROM hubspot.contact WHERE id = %s", (contact,))
        if in_block:
            conn.commit()
    hs.settle()
    assert hs.local("SELECT count(*) FROM hubspot.associations_contact_deal") == [(0,)]
    assert hs.sandbox.associations() == []


def test_a_refused_commit_text_changes_nothing(hs: Harness) -> None:
    """'ROLLBACK TO a; COMMIT' with a DELETE waiting for COMMIT is refused as a whole,
    before the savepoint rollback compensates anything."""
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('old@example.com')")
    with psycopg.connect(hs.url) as conn:
        conn.execute("DELETE FROM hubspot.contact WHERE email = 'old@example.com'")
        conn.execute("SAVEPOINT a")
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('new@example.com')")
        result = conn.pgconn.exec_(b"ROLLBACK TO a; COMMIT")
        assert result.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"0A000"
        conn.execute("COMMIT")  # on its own: archives, then commits
    hs.settle()
    assert live_emails(hs) == ["new@example.com"]
