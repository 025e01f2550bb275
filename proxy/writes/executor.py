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
from proxy.guard import CLEAR_TOKEN_SQL, SET_TOKEN_SQL, is_pending_id
from proxy.wire.messages.error_response import PgError
from proxy.wire.messages.ready_for_query import IN_TRANSACTION
from proxy.writes.errors import api_error, unsupported_error
from proxy.writes.journaling import LiveJournal, StatementJournal
from proxy.writes.ledger import DeferredArchive, TxLedger
from proxy.writes.outcome import ApiChange, Failure, Outcome, StatementError, Success, UpstreamError
from proxy.writes.plan import STAGE_SAVEPOINT, Unsupported, WritePlan, assigned_error
from proxy.writes.tables import SyncedTable, quote_ident
from proxy.writes.vendor import VendorWrites, previous_values

log = logging.getLogger(__name__)

STATEMENT_SAVEPOINT = "writeproxy_statement"
QUERY_CANCELED = "57014"
READ_ONLY_TRANSACTION = "25006"
#: How often an ON CONFLICT DO UPDATE's dry run is repeated to lock what it updates.
UPSERT_ATTEMPTS = 5
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
        guard_secret: str = "",
    ) -> None:
        self._connectors = connectors
        self._journal = journal
        self._guard_secret = guard_secret
        #: Association tables: their rows go with an archived object (the vendor drops
        #: an archived object's associations).
        self._association_tables = [t for t in associations if t.ends is not None]

    async def aclose(self) -> None:
        """Close the connectors' HTTP clients (worker shutdown)."""
        for connector in self._connectors.values():
            await connector.aclose()

    # -- the transaction's boundaries (proxy.frontend.transaction) -----------------

    async def rolled_back(self, entry_ids: Sequence[int]) -> None:
        await self._journal.rolled_back(entry_ids)

    def ended(self, xid: int | None, entry_ids: Sequence[int]) -> None:
        self._journal.ended(xid, entry_ids)

    async def archive_deferred(self, channel: UpstreamChannel, ledger: TxLedger) -> Failure | None:
        """Just before COMMIT: check deferred constraints (so the COMMIT cannot fail on
        them after the archive), then archive what the transaction's DELETEs removed.
        A failure is the COMMIT's failure; the caller rolls back."""
        deferred = ledger.deferred
        if not deferred:
            return None
        checked, isolation = await channel.run_many(
            [
                ("SET CONSTRAINTS ALL IMMEDIATE", NO_PARAMS),
                ("SELECT pg_catalog.current_setting('transaction_isolation')", NO_PARAMS),
            ]
        )
        if checked.error is not None:
            return Failure(UpstreamError(checked.error), checked.status)
        assert ledger.xid is not None
        if isolation.rows and isolation.rows[0][0] == b"serializable":
            # Its COMMIT may still fail the serializability check, after which an
            # archive could not be undone: archive once the COMMIT succeeded.
            for archive in deferred:
                dropped = await self._drop_associations(channel, archive)
                if dropped is not None:
                    return dropped
            ledger.after_commit = (ledger.xid, list(deferred))
            ledger.archived()
            return None
        for archive in deferred:
            hooks = self._journal.statement(xid=ledger.xid, connector=archive.connector)
            connector = self._connectors[archive.connector]
            try:
                await connector.archive(archive.object_type, list(archive.ids), hooks=hooks)
            except ApiError as error:
                if error.retry_safe or not await _all_gone(connector, archive):
                    return Failure(api_error(error, archive.table), IN_TRANSACTION)
                # The answer was lost but the objects are gone: the archive happened.
            finally:
                ledger.record(hooks.entry_ids)
            dropped = await self._drop_associations(channel, archive)
            if dropped is not None:
                return dropped
        ledger.archived()
        return None

    async def archive_committed(self, ledger: TxLedger) -> None:
        """After a SERIALIZABLE transaction's COMMIT succeeded: send the archives its
        DELETEs deferred (journaled under its xid, so a failed or lost archive is
        completed by the journal, which sees the transaction committed)."""
        postponed, ledger.after_commit = ledger.after_commit, None
        if postponed is None:
            return
        xid, archives = postponed
        for archive in archives:
            hooks = self._journal.statement(xid=xid, connector=archive.connector)
            try:
                await self._connectors[archive.connector].archive(
                    archive.object_type, list(archive.ids), hooks=hooks
                )
            except ApiError as error:
                log.warning(
                    "archive after COMMIT of %d %s failed (%s); the journal retries it",
                    len(archive.ids),
                    archive.object_type,
                    error.kind.value,
                )
            finally:
                self._journal.ended(xid, hooks.entry_ids)

    def forget_postponed(self, ledger: TxLedger) -> None:
        """The COMMIT failed: its transaction rolled back, its archives never run."""
        ledger.after_commit = None

    async def _drop_associations(
        self, channel: UpstreamChannel, archive: DeferredArchive
    ) -> Failure | None:
        """The vendor removed the archived objects' associations: so does the local copy,
        in the same transaction, just before its COMMIT."""
        for table in self._association_tables:
            assert table.ends is not None
            for column, object_type in table.ends:
                if table.connector != archive.connector or object_type != archive.object_type:
                    continue
                drop = (
                    f"DELETE FROM {quote_ident(table.schema)}.{quote_ident(table.name)} "
                    f"WHERE {quote_ident(column)} IN "
                    "(SELECT pg_catalog.jsonb_array_elements_text($1::jsonb))"
                )
                await channel.checked(SET_TOKEN_SQL, self._token(channel, table, drop))
                result = await channel.run(drop, json_param(list(archive.ids)))
                if result.error is not None:
                    return Failure(UpstreamError(result.error), result.status)
        return None

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
            _checked(next(results))
            old: list[Image] = []
            if plan.select_old is not None:
                old = _unique(_aggregated(_checked(next(results)), channel), plan)
            if dry_run is not None:
                _checked(next(results))
                _checked(next(results))
                new = self._new_rows(channel, plan, _checked(next(results)))
                _roll_back_dry_run(channel)
            if upsert:
                new, old = await self._upsert_dry_run(channel, plan, params)
            if plan.kind == "update" and plan.rejoins:
                _check_rejoined(plan, old, new)
            hooks = self._journal.statement(
                xid=xid,
                connector=table.connector,
                previous=previous_values(table, old) if old and table.ends is None else None,
                lookup_property=_lookup_property(table),
            )
            _check_keys_not_archived(plan, ledger, new)
            vendor = VendorWrites(self._connectors[table.connector], plan, hooks)
            if table.ends is not None:
                change = await self._associations(channel, plan, vendor, old, new)
            else:
                change = await vendor.call(old, new)
            _check_cancelled(ledger, started, timeout_s)
            _check_not_archived(plan, ledger, change)
            # One round trip: the apply, the savepoint's release (and, inside the
            # client's block, the token cleared); the COMMIT waits for the checks.
            finish = [
                (SET_TOKEN_SQL, self._token(channel, table, plan.apply)),
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
            _check_applied(plan, change, applied)
            ledger.record(hooks.entry_ids)
            if change.deferred is not None:
                ledger.defer(change.deferred)
            status = IN_TRANSACTION
            if not in_block:
                failure = await self.archive_deferred(channel, ledger)
                if failure is not None:
                    return await self.fail(channel, in_block, failure.error)
                commit = await channel.run("COMMIT")
                if commit.error is not None:
                    self.forget_postponed(ledger)
                    raise QueryFailed(commit)
                status = commit.status
                await self.archive_committed(ledger)
            return Success(applied.row_description, applied.raw_rows, applied.tag, status, change)
        except QueryFailed as failed:
            if hooks is not None:
                await self._journal.failed(hooks)
            assert failed.result.error is not None
            return await self.fail(channel, in_block, UpstreamError(failed.result.error), True)
        except ApiError as error:
            if hooks is not None:
                await self._journal.failed(hooks)
            value = _failed_value(plan, error, new)
            return await self.fail(channel, in_block, api_error(error, table, value))
        except Unsupported as error:
            if hooks is not None:
                await self._journal.failed(hooks)
            return await self.fail(channel, in_block, unsupported_error(error))
        except (Cancelled, ReadOnly, ArchivedAtCommit) as stopped:
            if hooks is not None:
                await self._journal.failed(hooks)  # the vendor change is undone
            return await self.fail(channel, in_block, stopped.error(plan))
        except BaseException:
            # E.g. the upstream connection was lost mid-statement: the transaction is
            # gone with it; the entries are resolved by its verdict.
            if hooks is not None:
                await self._journal.failed(hooks)
            raise

    def use_guard_secret(self, secret: str) -> None:
        """The guard was installed again (``proxy.guard.GuardKeeper``)."""
        self._guard_secret = secret

    def _token(self, channel: UpstreamChannel, table: SyncedTable, sql: str) -> StatementParams:
        """The guard's token for the statement ``sql``, which writes ``table``
        (``proxy.guard``): set just before it, cleared before the client speaks again."""
        return text_params(
            self._guard_secret, table.qualified, sql, encoding=channel.encoding or "utf-8"
        )

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
                _refuse_supplied_values(plan, image)
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


class Cancelled(Exception):
    """The client cancelled the statement, or its statement_timeout passed, while the
    vendor answered: the vendor call is not interrupted (its outcome would be unknown);
    its effect is undone and the statement fails as PostgreSQL's would."""

    def __init__(self, timeout: bool) -> None:
        super().__init__()
        self.timeout = timeout

    def error(self, plan: WritePlan) -> PgError:
        cause = "statement timeout" if self.timeout else "user request"
        return PgError(QUERY_CANCELED, f"canceling statement due to {cause}")


class ReadOnly(Exception):
    """PostgreSQL's own refusal, before anything is run."""

    def error(self, plan: WritePlan) -> PgError:
        return PgError(
            READ_ONLY_TRANSACTION,
            f"cannot execute {plan.kind.upper()} in a read-only transaction",
        )


class ArchivedAtCommit(Exception):
    """The statement's row is an object this transaction deleted (its email, or the
    vendor matched it by email to that object): the object is archived only at
    COMMIT, so the row would point to nothing. Fails as the re-insert of a unique value
    still held would — before the API call when the key shows it, else the vendor
    change is undone."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what

    def error(self, plan: WritePlan) -> PgError:
        return PgError(
            "23505",
            f"the vendor object of {self.what} this statement would write to "
            f"{plan.table.display} was deleted earlier in this transaction",
            detail="Deleted objects are archived at the vendor at COMMIT; until then "
            "their unique values (an email) are still taken.",
            hint="Commit the DELETE first, or UPDATE the row instead of deleting it.",
            extra={"schema_name": plan.table.schema, "table_name": plan.table.name},
        )


def _deferred_of(plan: WritePlan, ledger: TxLedger) -> list[DeferredArchive]:
    """The transaction's pending archives of the statement's kind of object."""
    table = plan.table
    return [
        archive
        for archive in ledger.deferred
        if archive.connector == table.connector and archive.object_type == table.object_type
    ]


def _check_not_archived(plan: WritePlan, ledger: TxLedger, change: ApiChange) -> None:
    if plan.kind != "insert" or plan.table.ends is not None:
        return
    pending = {i for archive in _deferred_of(plan, ledger) for i in archive.ids}
    for row in change.payload:
        ident = row.get(plan.table.id_column) if isinstance(row, dict) else None
        if ident is not None and str(ident) in pending:
            raise ArchivedAtCommit(f"id {ident}")


def _check_keys_not_archived(plan: WritePlan, ledger: TxLedger, new: list[Image]) -> None:
    """Before the API call: a new row whose unique key (email) belongs to an object
    this transaction deleted."""
    if plan.kind != "insert" or not plan.table.upsert_keys:
        return
    pending = {key for archive in _deferred_of(plan, ledger) for key in archive.keys}
    if not pending:
        return
    for row in new:
        for column in plan.table.upsert_keys:
            value = row.get(column)
            if value is not None and str(value).casefold() in pending:
                raise ArchivedAtCommit(f"{column} {value}")


def _check_cancelled(ledger: TxLedger, started: float, timeout_s: float) -> None:
    if ledger.cancel_requested:
        raise Cancelled(timeout=False)
    if timeout_s > 0 and time.monotonic() - started > timeout_s:
        raise Cancelled(timeout=True)


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


def _check_rejoined(plan: WritePlan, old: list[Image], new: list[Image]) -> None:
    """UPDATE ... FROM re-evaluates its join in the dry run: it must update exactly the
    rows that were locked, or the vendor and the table would disagree."""
    id_column = plan.table.id_column
    if {str(r[id_column]) for r in old} != {str(r[id_column]) for r in new}:
        raise Unsupported(
            f"the FROM list of this UPDATE of {plan.table.display} matched other rows when "
            "evaluated again (its tables changed meanwhile, or it is volatile)",
            "Retry the statement; or select the ids first and UPDATE ... WHERE id IN (...).",
        )


def _check_applied(plan: WritePlan, change: ApiChange, applied: Result) -> None:
    """The local apply must change exactly the rows the vendor was told about."""
    expected = len(change.payload)
    count = applied.tag.rsplit(" ", 1)[-1]
    if not count.isdigit() or int(count) == expected:
        return
    raise Unsupported(
        f"the local {plan.kind.upper()} of {plan.table.display} changed {count} rows where "
        f"{expected} were locked and sent to the vendor (a row-level security policy?)",
        "Give the role policies that let it change every row it can lock (FOR UPDATE).",
    )


def _failed_value(plan: WritePlan, error: ApiError, new: list[Image]) -> object | None:
    """The value of the column the vendor blamed, in the row that failed (plain INSERT
    and UPDATE send rows in statement order, so the vendor's index is the row's)."""
    column = plan.table.column_of(error.column) if error.column else None
    index = error.input_index
    if column is None or index is None or plan.conflict is not None or index >= len(new):
        return None
    return new[index].get(column)


def _refuse_supplied_values(plan: WritePlan, row: Image) -> None:
    """The API assigns the id and the read-only columns: an INSERT that gives one of
    them a value (even positionally) is refused; naming it with NULL/DEFAULT is fine
    (the id then holds the guard's placeholder)."""
    table = plan.table
    named = plan.insert_columns or tuple(c.name for c in table.columns)
    for column in named:
        if column == table.id_column:
            if not is_pending_id(row.get(column)):
                raise assigned_error(table, column)
        elif column in table.read_only and row.get(column) is not None:
            raise assigned_error(table, column)


def _unique(rows: list[Image], plan: WritePlan) -> list[Image]:
    """UPDATE ... FROM / DELETE ... USING may join a target row more than once."""
    table = plan.table
    seen: dict[Any, Image] = {}
    for row in rows:
        if table.ends is None:
            key = row[table.id_column]
        else:  # an association row is identified by its pair
            key = (row[table.ends[0][0]], row[table.ends[1][0]])
        seen.setdefault(key, row)
    return list(seen.values())


def _lookup_property(table: SyncedTable) -> str | None:
    """A unique vendor property of the table's objects (its one upsert key), which
    finds a created object again if the vendor's answer was lost."""
    if len(table.upsert_keys) != 1:
        return None
    (column,) = table.upsert_keys
    return table.property_of(column)


async def _all_gone(connector: Connector, archive: DeferredArchive) -> bool:
    """After an archive whose answer was lost: is every object archived at the vendor?"""
    try:
        for object_id in archive.ids:
            if await connector.get(archive.object_type, object_id) is not None:
                return False
    except ApiError:
        return False
    return True
