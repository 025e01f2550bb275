"""Execute a planned synced write on the client's own upstream connection, inside
its transaction: read the old images, let PostgreSQL compute the new ones, call the
vendor API (``proxy.writes.vendor``), then apply the API's answer locally and answer
with the client's own RETURNING list and PostgreSQL's own CommandComplete tag.

Statement atomicity: outside a transaction block the executor opens one and commits
it; inside one it works under a savepoint. If the API rejects the write, nothing is
written and the client gets the mapped error; inside a block the transaction is left
aborted, exactly as after any failed statement.

Every vendor call is journaled durably before it is sent, with the client
transaction's id (``pg_current_xact_id()``, taken once per transaction). The journal
entries go to the session's ledger; what is compensated, and when, is decided by
PostgreSQL's verdict on that transaction (``proxy.journal``). A statement that fails
after the vendor accepted (the local apply or the COMMIT failed) hands its entries to
the journal as rolled back, at once. DELETEs are applied locally and their archives
deferred to COMMIT time (``archive_deferred``): an archive cannot be undone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from proxy.backend.channel import QueryFailed, Result, UpstreamChannel
from proxy.backend.params import (
    NO_PARAMS,
    StatementParams,
    json_param,
    loads_exact,
    text_params,
)
from proxy.connectors.base import ApiError, Connector
from proxy.guard import CLEAR_TOKEN_SQL, SET_TOKEN_SQL
from proxy.guard_key import GuardKey
from proxy.logcontext import set_xid
from proxy.wire.messages.ready_for_query import IN_TRANSACTION
from proxy.writes.archives import DeferredArchives
from proxy.writes.checks import (
    ArchivedAtCommit,
    ArchivedElsewhere,
    Cancelled,
    ReadOnly,
    check_applied,
    check_cancelled,
    check_keys_not_archived,
    check_not_archived,
    check_rejoined,
    failed_value,
    refuse_supplied_values,
    unique_rows,
)
from proxy.writes.errors import api_error, unsupported_error
from proxy.writes.journaling import LiveJournal, StatementJournal
from proxy.writes.ledger import TxLedger
from proxy.writes.outcome import ApiChange, Failure, Outcome, StatementError, Success, UpstreamError
from proxy.writes.plan import STAGE_SAVEPOINT, Unsupported, WritePlan
from proxy.writes.tables import SyncedTable
from proxy.writes.vendor import VendorWrites, previous_values

log = logging.getLogger(__name__)

STATEMENT_SAVEPOINT = "writeproxy_statement"
#: How often an ON CONFLICT DO UPDATE's dry run is repeated to lock what it updates.
UPSERT_ATTEMPTS = 5
#: How long an upsert that matched objects another transaction is archiving waits for
#: that archive before failing with 40001 (so that the client's retry creates anew).
ADOPTION_WAIT_S = 3.0
#: Leaves a transaction block aborted, as any failed statement does.
ABORT_SQL = (
    "DO $writeproxy$ BEGIN RAISE EXCEPTION 'writeproxy: synced write failed'; END $writeproxy$"
)
#: The transaction's xid, and what PostgreSQL would check before running the client's
#: statement: a read-only transaction, and the statement_timeout the vendor call counts
#: against (seconds).
CURRENT_XID_SQL = (
    "SELECT pg_catalog.pg_current_xact_id()::text, "
    "pg_catalog.current_setting('transaction_read_only'), "
    "extract(epoch FROM pg_catalog.current_setting('statement_timeout')::interval)::text"
)
#: In the block the proxy opens around an autocommit statement, also no
#: idle_in_transaction_session_timeout while the vendor answers (the client's statement
#: is running, not idle; SET LOCAL ends with the block).
OWN_BLOCK_XID_SQL = (
    f"{CURRENT_XID_SQL}, pg_catalog.set_config('idle_in_transaction_session_timeout', '0', true)"
)

Image = dict[str, Any]


def images(result: Result, channel: UpstreamChannel) -> list[Image]:
    """One row image (``to_jsonb``) per row, read in the session's encoding."""
    return [loads_exact(channel.text(row[0])) for row in result.rows if row[0] is not None]


class WriteExecutor:
    """Runs planned writes; one per worker, shared by its sessions."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        journal: LiveJournal,
        associations: Sequence[SyncedTable] = (),
        guard: GuardKey | None = None,
    ) -> None:
        self._connectors = connectors
        self._journal = journal
        self._guard = guard or GuardKey()
        #: The archives DELETEs defer to COMMIT (also the sessions' archiver).
        self.archives = DeferredArchives(connectors, journal, associations, self._token)

    async def aclose(self) -> None:
        """Close the connectors' HTTP clients (worker shutdown)."""
        for connector in self._connectors.values():
            await connector.aclose()

    # -- the transaction's boundaries (proxy.frontend.transaction) -----------------

    async def rolled_back(self, entry_ids: Sequence[int]) -> None:
        await self._journal.rolled_back(entry_ids)

    def ended(self, xid: int | None, entry_ids: Sequence[int]) -> None:
        self._journal.ended(xid, entry_ids)

    async def execute(
        self,
        channel: UpstreamChannel,
        plan: WritePlan,
        in_block: bool,
        ledger: TxLedger,
        params: StatementParams = NO_PARAMS,
    ) -> Outcome:
        table = plan.table
        hooks: StatementJournal | None = None
        new: list[Image] = []
        try:
            ledger.cancel_requested = False
            started = time.monotonic()
            # One round trip: the block, the xid and token, the savepoint, the locked
            # rows and the dry run (the upsert's dry run is repeated on its own).
            upsert = plan.conflict is not None and plan.conflict.action == "update"
            prelude: list[tuple[str, StatementParams]] = [] if in_block else [("BEGIN", NO_PARAMS)]
            prelude += [
                (CURRENT_XID_SQL if in_block else OWN_BLOCK_XID_SQL, NO_PARAMS),
                (f"SAVEPOINT {STATEMENT_SAVEPOINT}", NO_PARAMS),
            ]
            if plan.select_old is not None:
                prelude.append((plan.select_old, params))
            dry_run = plan.dry_run if not upsert else None
            if dry_run is not None:
                prelude += [
                    (f"SAVEPOINT {STAGE_SAVEPOINT}", NO_PARAMS),
                    (SET_TOKEN_SQL, self._token(channel, table, dry_run)),
                    (dry_run, params),
                ]
            results = iter(await channel.run_many(prelude))
            if not in_block:
                _checked(next(results))
            xid, timeout_s = self._current_xid(ledger, _checked(next(results)))
            set_xid(xid)  # on this statement's log lines
            _checked(next(results))
            old: list[Image] = []
            if plan.select_old is not None:
                old = unique_rows(_aggregated(_checked(next(results)), channel), plan)
            if dry_run is not None:
                _checked(next(results))
                _checked(next(results))
                new = self._new_rows(channel, plan, _checked(next(results)))
                _roll_back_dry_run(channel)
            if upsert:
                new, old = await self._upsert_dry_run(channel, plan, params)
            if plan.kind == "update" and plan.rejoins:
                check_rejoined(plan, old, new)
            connector = self._connectors[table.connector]
            hooks = self._journal.statement(
                xid=xid,
                connector=table.connector,
                previous=previous_values(table, old, json_as_text=connector.json_as_text)
                if old and table.ends is None
                else None,
                lookup_property=_lookup_property(table),
            )
            check_keys_not_archived(plan, ledger, new)
            vendor = VendorWrites(connector, plan, hooks)
            if table.ends is not None:
                change = await self._associations(channel, plan, vendor, old, new)
            else:
                change = await vendor.call(old, new)
            check_cancelled(ledger, started, timeout_s)
            check_not_archived(plan, ledger, change)
            # One round trip: the apply, the savepoint's release (and, inside the
            # client's block, the token cleared); the COMMIT waits for the checks.
            finish = [
                (
                    SET_TOKEN_SQL,
                    self._token(channel, table, plan.apply, _applied_ids(plan, change)),
                ),
                (plan.apply, json_param(change.payload)),
                (f"RELEASE SAVEPOINT {STATEMENT_SAVEPOINT}", NO_PARAMS),
            ]
            if in_block:
                finish.append((CLEAR_TOKEN_SQL, NO_PARAMS))
            token_set, applied, *after = await channel.run_many(
                finish, params.result_formats, formats_for=1
            )
            _checked(token_set)
            _checked(applied)
            for result in after:
                _checked(result)
            check_applied(plan, change, applied)
            if change.adopted:
                # After the apply: a DELETE of the same rows by another transaction
                # has committed by now (the apply waited for its row lock), and its
                # archive was journaled before that COMMIT.
                await self._check_not_archiving(xid, table, change.adopted)
            ledger.record(hooks.entry_ids)
            if change.deferred is not None:
                ledger.defer(change.deferred)
            status = IN_TRANSACTION
            if not in_block:
                failure = await self.archives.archive_deferred(channel, ledger)
                if failure is not None:
                    return await self.fail(channel, in_block, failure.error)
                commit = await channel.run("COMMIT")
                if commit.error is not None:
                    await self.archives.forget_postponed(ledger)
                    raise QueryFailed(commit)
                status = commit.status
                await self.archives.archive_committed(ledger)
            return Success(applied.row_description, applied.raw_rows, applied.tag, status, change)
        except QueryFailed as failed:
            if hooks is not None:
                await self._journal.failed(hooks)
            assert failed.result.error is not None
            return await self.fail(channel, in_block, UpstreamError(failed.result.error), True)
        except ApiError as error:
            if hooks is not None:
                await self._journal.failed(hooks)
            value = failed_value(plan, error, new)
            return await self.fail(channel, in_block, api_error(error, table, value))
        except Unsupported as error:
            if hooks is not None:
                await self._journal.failed(hooks)
            return await self.fail(channel, in_block, unsupported_error(error))
        except (Cancelled, ReadOnly, ArchivedAtCommit, ArchivedElsewhere) as stopped:
            if hooks is not None:
                await self._journal.failed(hooks)  # the vendor change is undone
            return await self.fail(channel, in_block, stopped.error(plan))
        except BaseException:
            # E.g. the upstream connection was lost mid-statement: the transaction is
            # gone with it; the entries are resolved by its verdict.
            if hooks is not None:
                await self._journal.failed(hooks)
            raise
        finally:
            set_xid(None)

    async def _check_not_archiving(self, xid: int, table: SyncedTable, ids: Sequence[str]) -> None:
        """An upsert adopted objects the vendor already had: fail if another
        transaction is archiving them (its archive would land after this statement)."""
        gone = await self._journal.archiving_elsewhere(
            xid=xid,
            connector=table.connector,
            object_type=table.object_type,
            ids=ids,
            wait_s=ADOPTION_WAIT_S,
        )
        if gone:
            raise ArchivedElsewhere(gone)

    def use_guard_key(self, key: GuardKey) -> None:
        """The guard was installed again (``proxy.guard.GuardKeeper``)."""
        self._guard = key

    def _token(
        self, channel: UpstreamChannel, table: SyncedTable, sql: str, ids: Sequence[str] = ()
    ) -> StatementParams:
        """The guard's token for the statement ``sql``, which writes ``table`` — only
        the rows with ``ids`` (none given: any row, for the rolled-back dry run)
        (``proxy.guard``): set just before it, cleared before the client speaks again."""
        rows = json.dumps(list(ids)) if ids else ""
        return text_params(self._guard.token(table.qualified, sql, rows), rows)

    def _current_xid(self, ledger: TxLedger, result: Result) -> tuple[int, float]:
        """The client transaction's xid, asked for every statement: a transaction can
        end and another begin without the proxy seeing a ReadyForQuery in between (a
        pipeline with COMMIT and BEGIN before its Sync, COMMIT AND CHAIN). A new xid
        means the ledger's entries belong to a transaction that has ended: they are
        handed to the journal, which resolves them by that transaction's verdict."""
        row = result.rows[0]
        xid = int(row[0] or b"0")
        if ledger.xid is not None and ledger.xid != xid:
            previous, entries = ledger.end()
            self._journal.ended(previous, entries)
        ledger.xid = xid
        if row[1] == b"on":
            raise ReadOnly()
        return xid, float(row[2] or b"0")

    async def _associations(
        self,
        channel: UpstreamChannel,
        plan: WritePlan,
        vendor: VendorWrites,
        old: list[Image],
        new: list[Image],
    ) -> ApiChange:
        """Association rows: the dry run has already inserted the pairs into the real
        table (and rolled back), so a pair that already exists (or violates another
        local constraint) failed with PostgreSQL's own error before the vendor is asked,
        and compensation can never remove an association that existed before."""
        if plan.kind != "delete" and any(row.get("labels") for row in new):
            raise Unsupported(
                f"labelled associations in {plan.table.display} are not supported yet",
                "Leave labels NULL: the default association is created.",
            )
        return await vendor.associate(old, new)

    async def fail(
        self, channel: UpstreamChannel, in_block: bool, error: StatementError, aborted: bool = False
    ) -> Failure:
        """Leave the session as PostgreSQL would after this statement failed."""
        await channel.drain(check=False)
        if not in_block:
            result = await channel.run("ROLLBACK")
        elif aborted:
            # The failure already aborted the transaction; read its current status.
            result = await channel.run("SELECT 1")
        else:
            result = await channel.run(ABORT_SQL)
        return Failure(error, result.status)

    async def _dry_run(
        self,
        channel: UpstreamChannel,
        plan: WritePlan,
        params: StatementParams,
    ) -> list[Image]:
        """The client's statement on the real table, rolled back: PostgreSQL's new rows.
        An INSERT's rows carry the guard's placeholder id (None here); one that gives
        the id or a column the API sets a value is refused."""
        assert plan.dry_run is not None
        await channel.checked(f"SAVEPOINT {STAGE_SAVEPOINT}")
        await channel.checked(SET_TOKEN_SQL, self._token(channel, plan.table, plan.dry_run))
        result = await channel.checked(plan.dry_run, params)
        _roll_back_dry_run(channel)
        return self._new_rows(channel, plan, result)

    def _new_rows(self, channel: UpstreamChannel, plan: WritePlan, result: Result) -> list[Image]:
        new: list[Image] = []
        for row in result.rows:
            if row[0] is None:
                continue
            image = loads_exact(channel.text(row[0]))
            if plan.kind == "insert" and row[1] == b"t" and plan.table.ends is None:
                refuse_supplied_values(plan, image)
                image[plan.table.id_column] = None
            new.append(image)
        return new

    async def _upsert_dry_run(
        self, channel: UpstreamChannel, plan: WritePlan, params: StatementParams
    ) -> tuple[list[Image], list[Image]]:
        """INSERT ... ON CONFLICT DO UPDATE: the dry run tells which existing rows the
        clause updates; they are locked and the dry run repeated until it updates only
        locked rows (another transaction may insert or delete a conflicting row in
        between). Returns the new rows and the locked old images of the updated ones."""
        conflict = plan.conflict
        assert conflict is not None
        id_column = plan.table.id_column
        locked: dict[str, Image] = {}
        for _ in range(UPSERT_ATTEMPTS):
            new = await self._dry_run(channel, plan, params)
            updated = {str(row[id_column]) for row in new if row[id_column] is not None}
            missing = sorted(updated - locked.keys())
            if not missing:
                return new, [locked[ident] for ident in sorted(updated)]
            result = await channel.checked(conflict.lock_existing, json_param(missing))
            for image in images(result, channel):
                locked[str(image[id_column])] = image
        raise Unsupported(
            "the rows this INSERT ... ON CONFLICT updates kept changing while it ran",
            "Retry the statement.",
        )


def _applied_ids(plan: WritePlan, change: ApiChange) -> list[str]:
    """The ids of the rows the apply writes (association rows have none of their own:
    their pairs are not scoped)."""
    table = plan.table
    if table.ends is not None:
        return []
    if plan.kind == "delete":
        return [str(ident) for ident in change.payload]
    return [str(row[table.id_column]) for row in change.payload if isinstance(row, dict)]


def _checked(result: Result) -> Result:
    if result.error is not None:
        raise QueryFailed(result)
    return result


def _roll_back_dry_run(channel: UpstreamChannel) -> None:
    """Undo the dry run without waiting: PostgreSQL does it while the vendor answers."""
    channel.send_ahead(f"ROLLBACK TO SAVEPOINT {STAGE_SAVEPOINT}")
    channel.send_ahead(f"RELEASE SAVEPOINT {STAGE_SAVEPOINT}")


def _aggregated(result: Result, channel: UpstreamChannel) -> list[Image]:
    """The old-images query's one row: a JSON array of images (NULL: none)."""
    value = result.rows[0][0] if result.rows else None
    return loads_exact(channel.text(value)) if value is not None else []


def _lookup_property(table: SyncedTable) -> str | None:
    """A unique vendor property of the table's objects (its one upsert key), which
    finds a created object again if the vendor's answer was lost."""
    if len(table.upsert_keys) != 1:
        return None
    (column,) = table.upsert_keys
    return table.property_of(column)
