"""The executor's decisions (proxy.writes.executor), with a fake upstream channel, a
fake connector and a fake journal: the order of PostgreSQL statements and vendor calls,
what is journaled, what is deferred, and how failures leave the transaction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from proxy.backend.channel import QueryFailed, Result
from proxy.backend.params import NO_PARAMS, StatementParams
from proxy.connectors.base import ApiError, ApiObject, ErrorKind
from proxy.guard import PENDING_ID_PREFIX
from proxy.wire.messages.error_response import PgError
from proxy.wire.messages.ready_for_query import FAILED_TRANSACTION, IDLE, IN_TRANSACTION
from proxy.writes.executor import CURRENT_XID_SQL, OWN_BLOCK_XID_SQL, WriteExecutor
from proxy.writes.ledger import DeferredArchive, TxLedger
from proxy.writes.outcome import Failure, Success, UpstreamError
from proxy.writes.plan import WritePlan, plan_write
from tests.unit.test_plan import contact_table

ROW = {"id": None, "email": "ada@example.com", "firstname": "Ada", "user_id": None}
OLD = {"id": "501", "email": "ada@example.com", "firstname": "Ada", "user_id": None}
ERROR_BODY = PgError("23503", "violates foreign key").encode()[5:]
ISOLATION_SQL = "SELECT pg_catalog.current_setting('transaction_isolation')"


class FakeChannel:
    """Answers the executor's statements from a script; records every SQL text."""

    def __init__(
        self,
        plan: WritePlan,
        *,
        images: Sequence[Mapping[str, Any]] = (),
        fail: str = "",
        read_only: bool = False,
        isolation: bytes = b"read committed",
    ) -> None:
        self._read_only = b"on" if read_only else b"off"
        self._isolation = isolation
        self.sql: list[str] = []
        self.encoding = "utf-8"
        self._plan = plan
        self._images = [dict(i) for i in images]
        self._fail = fail
        self._aborted = False

    async def run(
        self, sql: str, params: StatementParams = NO_PARAMS, result_formats: Any = ()
    ) -> Result:
        self.sql.append(sql)
        if self._fail and sql.startswith(self._fail):
            self._aborted = True
            return Result(error=ERROR_BODY, status=FAILED_TRANSACTION)
        status = FAILED_TRANSACTION if self._aborted else IN_TRANSACTION
        if sql in ("COMMIT", "ROLLBACK"):
            return Result(tag=sql, status=IDLE)
        if sql == ISOLATION_SQL:
            return Result(rows=[[self._isolation]], status=status)
        if sql in (CURRENT_XID_SQL, OWN_BLOCK_XID_SQL):
            return Result(rows=[[b"4242", self._read_only, b"0", b""]], status=status)
        if sql == self._plan.select_old:  # one row: the JSON array of the old images
            return Result(rows=[[json.dumps(self._images).encode(), b""]], status=status)
        if sql == self._plan.dry_run:  # image, inserted; new rows carry the placeholder
            rows = [
                [json.dumps({**i, "id": i["id"] or f"{PENDING_ID_PREFIX}1"}).encode(), b"t"]
                if self._plan.kind == "insert"
                else [json.dumps(i).encode(), b"f"]
                for i in self._images
            ]
            return Result(rows=rows, status=status)
        if sql.startswith(("INSERT", "UPDATE", "DELETE", "WITH")):
            return Result(tag="INSERT 0 1", raw_rows=[b"\x00\x00"], status=status)
        return Result(status=status)

    def text(self, raw: bytes) -> str:
        return raw.decode(self.encoding)

    async def run_many(
        self,
        statements: Sequence[tuple[str, StatementParams]],
        result_formats: Any = (),
        formats_for: int = 0,
    ) -> list[Result]:
        return [await self.run(sql, params) for sql, params in statements]

    def send_ahead(self, sql: str) -> None:
        self.sql.append(sql)

    async def drain(self, check: bool = True) -> None:
        return None

    async def checked(self, sql: str, params: StatementParams = NO_PARAMS) -> Result:
        result = await self.run(sql, params)
        if result.error is not None:
            raise QueryFailed(result)
        return result


class FakeConnector:
    empty_string_is_null = False
    json_as_text = True

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._error = error

    async def _answer(self, op: str, payload: Any, hooks: Any) -> None:
        self.calls.append((op, payload))
        if hooks is not None:  # journaled call by call (not an announced archive)
            hooks.entry_ids.append(hooks.xid * 10 + len(hooks.entry_ids) + 1)
        if self._error is not None:
            raise self._error

    async def create(self, object_type: str, rows: Any, *, hooks: Any = None) -> list[ApiObject]:
        await self._answer("create", list(rows), hooks)
        return [ApiObject(str(900 + i), {}, "t", "t") for i, _ in enumerate(rows)]

    async def update(self, object_type: str, changes: Any, *, hooks: Any = None) -> list[Any]:
        await self._answer("update", list(changes), hooks)
        return [ApiObject(i, {}, "t", "t") for i, _ in changes]

    async def archive(self, object_type: str, ids: Any, *, hooks: Any = None) -> None:
        await self._answer("archive", list(ids), hooks)

    async def aclose(self) -> None:
        return None


class FakeStatement:
    def __init__(self, xid: int) -> None:
        self.xid = xid
        self.entry_ids: list[int] = []


class FakeJournal:
    def __init__(self) -> None:
        self.statements: list[FakeStatement] = []
        self.failed_ids: list[int] = []
        self.ended_calls: list[tuple[int | None, list[int]]] = []
        self.announced: list[tuple[int, str, list[str]]] = []
        self.sent: list[tuple[int, ApiError | None]] = []
        self.not_sent: list[int] = []

    async def announce_archive(
        self, *, xid: int, connector: str, object_type: str, ids: Sequence[str]
    ) -> int:
        self.announced.append((xid, object_type, list(ids)))
        return 9000 + len(self.announced)

    async def archive_sent(self, entry_id: int, error: ApiError | None) -> None:
        self.sent.append((entry_id, error))

    async def archive_not_sent(self, entry_ids: Sequence[int]) -> None:
        self.not_sent += entry_ids

    def ended(self, xid: int | None, entry_ids: Sequence[int]) -> None:
        self.ended_calls.append((xid, list(entry_ids)))

    def statement(self, *, xid: int, connector: str, **_: Any) -> FakeStatement:
        self.statements.append(FakeStatement(xid))
        return self.statements[-1]

    async def failed(self, statement: FakeStatement) -> None:
        self.failed_ids += statement.entry_ids


def executor(connector: FakeConnector, journal: FakeJournal) -> WriteExecutor:
    return WriteExecutor({"hubspot": connector}, journal)  # type: ignore[dict-item, arg-type]


def plan(sql: str) -> WritePlan:
    return plan_write(sql, contact_table())


INSERT = "INSERT INTO hubspot.contact (email, firstname) VALUES ('ada@example.com', 'Ada')"
DELETE = "DELETE FROM hubspot.contact WHERE email = 'ada@example.com'"


async def run(
    sql: str,
    in_block: bool,
    *,
    images: Sequence[Mapping[str, Any]] = (),
    fail: str = "",
    connector: FakeConnector | None = None,
    journal: FakeJournal | None = None,
    ledger: TxLedger | None = None,
    isolation: bytes = b"read committed",
) -> tuple[Success | Failure, FakeChannel]:
    planned = plan(sql)
    channel = FakeChannel(planned, images=images, fail=fail, isolation=isolation)
    outcome = await executor(connector or FakeConnector(), journal or FakeJournal()).execute(
        channel,  # type: ignore[arg-type]
        planned,
        in_block,
        ledger if ledger is not None else TxLedger(),
    )
    return outcome, channel


async def test_autocommit_insert_calls_the_api_between_dry_run_and_apply() -> None:
    connector, journal, ledger = FakeConnector(), FakeJournal(), TxLedger()
    outcome, channel = await run(
        INSERT, False, images=[ROW], connector=connector, journal=journal, ledger=ledger
    )
    assert isinstance(outcome, Success) and outcome.status == IDLE
    assert channel.sql[:3] == ["BEGIN", OWN_BLOCK_XID_SQL, "SAVEPOINT writeproxy_statement"]
    assert channel.sql[-2:] == ["RELEASE SAVEPOINT writeproxy_statement", "COMMIT"]
    assert connector.calls == [
        ("create", [{"email": "ada@example.com", "firstname": "Ada", "user_id": None}])
    ]
    assert [s.xid for s in journal.statements] == [4242]
    assert ledger.entry_ids == [42421] and ledger.xid == 4242


async def test_autocommit_block_suspends_the_idle_timeout_with_the_xid() -> None:
    _, channel = await run(INSERT, False, images=[ROW])
    assert channel.sql[1] == OWN_BLOCK_XID_SQL
    assert "set_config('idle_in_transaction_session_timeout', '0', true)" in channel.sql[1]
    _, channel = await run(INSERT, True, images=[ROW])
    assert channel.sql[0] == CURRENT_XID_SQL  # the client's own block is left alone


async def test_a_new_xid_hands_the_previous_transactions_entries_over() -> None:
    """COMMIT and BEGIN in one pipeline (no ReadyForQuery between): the statement's xid
    tells that the ledger's entries belong to a transaction that has ended."""
    journal, ledger = FakeJournal(), TxLedger(xid=7)
    ledger.record([70])
    await run(INSERT, True, images=[ROW], journal=journal, ledger=ledger)
    assert journal.ended_calls == [(7, [70])]
    assert ledger.xid == 4242 and ledger.entry_ids == [42421]


async def test_same_xid_keeps_the_ledger() -> None:
    journal, ledger = FakeJournal(), TxLedger(xid=4242)
    ledger.record([1])
    await run(INSERT, True, images=[ROW], journal=journal, ledger=ledger)
    assert journal.ended_calls == [] and ledger.entry_ids == [1, 42421]


async def test_api_rejection_rolls_back_and_maps_the_error() -> None:
    duplicate = ApiError(ErrorKind.DUPLICATE, "exists", column="email", input_index=0)
    journal, ledger = FakeJournal(), TxLedger()
    outcome, channel = await run(
        INSERT,
        False,
        images=[ROW],
        connector=FakeConnector(duplicate),
        journal=journal,
        ledger=ledger,
    )
    assert isinstance(outcome, Failure) and isinstance(outcome.error, PgError)
    assert outcome.error.sqlstate == "23505"
    assert outcome.error.extra["constraint_name"] == "contact_email_key"
    assert outcome.error.detail is not None and "(ada@example.com)" in outcome.error.detail
    assert channel.sql[-1] == "ROLLBACK"
    assert plan(INSERT).apply not in channel.sql  # nothing applied
    assert journal.failed_ids == [42421] and ledger.entry_ids == []


async def test_local_failure_after_the_api_hands_the_entries_back_at_once() -> None:
    journal, ledger = FakeJournal(), TxLedger(xid=4242)
    outcome, _ = await run(
        INSERT,
        True,
        images=[ROW],
        fail=plan(INSERT).apply,  # the local apply, after the API call
        journal=journal,
        ledger=ledger,
    )
    assert isinstance(outcome, Failure) and outcome.error == UpstreamError(ERROR_BODY)
    assert outcome.status == FAILED_TRANSACTION  # left aborted, as PostgreSQL would
    assert journal.failed_ids == [42421] and ledger.entry_ids == []


async def test_delete_in_a_block_is_applied_locally_and_deferred() -> None:
    connector, ledger = FakeConnector(), TxLedger()
    outcome, _ = await run(DELETE, True, images=[OLD], connector=connector, ledger=ledger)
    assert isinstance(outcome, Success)
    assert connector.calls == []  # nothing reaches the vendor before COMMIT
    assert [d.ids for d in ledger.deferred] == [("501",)]


async def test_delete_in_autocommit_archives_after_the_local_delete_before_commit() -> None:
    connector, ledger = FakeConnector(), TxLedger()
    outcome, channel = await run(DELETE, False, images=[OLD], connector=connector, ledger=ledger)
    assert isinstance(outcome, Success)
    assert connector.calls == [("archive", ["501"])]
    tail = channel.sql[channel.sql.index("SET CONSTRAINTS ALL IMMEDIATE") :]
    assert tail == ["SET CONSTRAINTS ALL IMMEDIATE", ISOLATION_SQL, "COMMIT"]
    assert ledger.deferred == [] and ledger.entry_ids == [42421]


async def test_a_serializable_delete_is_archived_once_its_commit_succeeded() -> None:
    """The serializability check runs at COMMIT and may fail it: the archive, which
    cannot be undone, waits for the COMMIT's success."""
    connector, journal, ledger = FakeConnector(), FakeJournal(), TxLedger()
    outcome, channel = await run(
        DELETE,
        False,
        images=[OLD],
        connector=connector,
        journal=journal,
        ledger=ledger,
        isolation=b"serializable",
    )
    assert isinstance(outcome, Success)
    assert channel.sql[-1] == "COMMIT" and connector.calls == [("archive", ["501"])]
    # Journaled before the COMMIT, its outcome after the archive, resolved as the
    # committed xid's.
    assert journal.announced == [(4242, "contacts", ["501"])]
    assert journal.sent == [(9001, None)] and journal.ended_calls == [(4242, [9001])]
    assert ledger.after_commit is None and journal.not_sent == []


async def test_a_serializable_archive_the_vendor_refuses_after_commit_stays_open() -> None:
    down = ApiError(ErrorKind.UNAVAILABLE, "down", retry_safe=True)
    connector, journal = FakeConnector(down), FakeJournal()
    outcome, _ = await run(
        DELETE, False, images=[OLD], connector=connector, journal=journal, isolation=b"serializable"
    )
    assert isinstance(outcome, Success)  # the DELETE committed: the journal archives it
    assert journal.sent == [(9001, down)] and journal.ended_calls == [(4242, [9001])]


async def test_a_serializable_archive_interrupted_after_commit_is_not_recorded_as_sent() -> None:
    """Not an answer from the vendor (a connector gone since a reload, a bug): the
    COMMIT stands, the entry keeps its intent for the journal to send; cancelled:
    likewise, and the cancellation goes on."""
    broken, journal = FakeConnector(RuntimeError("client closed")), FakeJournal()
    outcome, _ = await run(
        DELETE, False, images=[OLD], connector=broken, journal=journal, isolation=b"serializable"
    )
    assert isinstance(outcome, Success) and journal.sent == []
    assert journal.ended_calls == [(4242, [9001])]
    cancelled, journal = FakeConnector(asyncio.CancelledError()), FakeJournal()
    with pytest.raises(asyncio.CancelledError):
        await run(
            DELETE,
            False,
            images=[OLD],
            connector=cancelled,
            journal=journal,
            isolation=b"serializable",
        )
    assert journal.sent == [] and journal.ended_calls == [(4242, [9001])]


async def test_failed_deferred_archive_fails_like_the_commit() -> None:
    forbidden = ApiError(ErrorKind.FORBIDDEN, "missing scope")
    outcome, channel = await run(DELETE, False, images=[OLD], connector=FakeConnector(forbidden))
    assert isinstance(outcome, Failure) and isinstance(outcome.error, PgError)
    assert outcome.error.sqlstate == "42501"
    assert channel.sql[-1] == "ROLLBACK" and "COMMIT" not in channel.sql


async def test_deferred_constraint_violation_stops_the_archive() -> None:
    channel = FakeChannel(plan(DELETE), fail="SET CONSTRAINTS")
    connector, ledger = FakeConnector(), TxLedger(xid=3)
    ledger.defer(DeferredArchive("hubspot", "contacts", contact_table(), ("1",)))
    failure = await executor(connector, FakeJournal()).archives.archive_deferred(
        channel,  # type: ignore[arg-type]
        ledger,
    )
    assert failure is not None and failure.error == UpstreamError(ERROR_BODY)
    assert connector.calls == []


@pytest.mark.parametrize("in_block", [False, True])
async def test_update_without_changes_calls_nothing(in_block: bool) -> None:
    connector = FakeConnector()
    outcome, _ = await run(
        "UPDATE hubspot.contact SET firstname = firstname",
        in_block,
        images=[OLD],
        connector=connector,
    )
    assert isinstance(outcome, Success) and connector.calls == []


async def test_a_read_only_transaction_is_refused_before_any_call() -> None:
    planned, connector = plan(INSERT), FakeConnector()
    channel = FakeChannel(planned, images=[ROW], read_only=True)
    outcome = await executor(connector, FakeJournal()).execute(
        channel,  # type: ignore[arg-type]
        planned,
        True,
        TxLedger(),
    )
    assert isinstance(outcome, Failure) and isinstance(outcome.error, PgError)
    assert outcome.error.sqlstate == "25006"
    assert str(outcome.error.message) == "cannot execute INSERT in a read-only transaction"
    assert connector.calls == []


class CancellingConnector(FakeConnector):
    """A cancel arrives while the vendor answers."""

    def __init__(self, ledger: TxLedger) -> None:
        super().__init__()
        self._ledger = ledger

    async def _answer(self, op: str, payload: Any, hooks: Any) -> None:
        await super()._answer(op, payload, hooks)
        self._ledger.cancel_requested = True


async def test_a_cancel_during_the_call_undoes_it_and_fails_with_57014() -> None:
    journal, ledger = FakeJournal(), TxLedger()
    outcome, channel = await run(
        INSERT,
        False,
        images=[ROW],
        connector=CancellingConnector(ledger),
        journal=journal,
        ledger=ledger,
    )
    assert isinstance(outcome, Failure) and isinstance(outcome.error, PgError)
    assert outcome.error.sqlstate == "57014"
    assert journal.failed_ids == [42421]  # handed to the journal to undo
    assert plan(INSERT).apply not in channel.sql and channel.sql[-1] == "ROLLBACK"
