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
from collections.abc import Mapping, Sequence
from typing import Any

from proxy.backend.channel import QueryFailed, Result, UpstreamChannel
from proxy.backend.params import NO_PARAMS, StatementParams, json_param
from proxy.connectors.base import ApiError, Connector
from proxy.wire.messages.ready_for_query import IN_TRANSACTION
from proxy.writes.errors import api_error, unsupported_error
from proxy.writes.journaling import LiveJournal, StatementJournal
from proxy.writes.ledger import DeferredArchive, TxLedger
from proxy.writes.outcome import ApiChange, Failure, Outcome, StatementError, Success, UpstreamError
from proxy.writes.plan import STAGE_SAVEPOINT, Unsupported, WritePlan, assigned_error
from proxy.writes.tables import SyncedTable, quote_ident
from proxy.writes.vendor import VendorWrites, association_rows, previous_values

log = logging.getLogger(__name__)

STATEMENT_SAVEPOINT = "writeproxy_statement"
#: Leaves a transaction block aborted, as any failed statement does.
ABORT_SQL = (
    "DO $writeproxy$ BEGIN RAISE EXCEPTION 'writeproxy: synced write failed'; END $writeproxy$"
)
CURRENT_XID_SQL = "SELECT pg_catalog.pg_current_xact_id()::text"
#: In the block the proxy opens around an autocommit statement: the xid, and no
#: idle_in_transaction_session_timeout while the vendor answers (the client's statement
#: is running, not idle; SET LOCAL ends with the block).
OWN_BLOCK_XID_SQL = (
    "SELECT pg_catalog.pg_current_xact_id()::text, "
    "pg_catalog.set_config('idle_in_transaction_session_timeout', '0', true)"
)

Image = dict[str, Any]


def images(result: Result) -> list[Image]:
    return [json.loads(row[0]) for row in result.rows if row[0] is not None]


class WriteExecutor:
    """Runs planned writes; one per worker, shared by its sessions."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        journal: LiveJournal,
        associations: Sequence[SyncedTable] = (),
    ) -> None:
        self._connectors = connectors
        self._journal = journal
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
        checked = await channel.run("SET CONSTRAINTS ALL IMMEDIATE")
        if checked.error is not None:
            return Failure(UpstreamError(checked.error), checked.status)
        assert ledger.xid is not None
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
                result = await channel.run(
                    f"DELETE FROM {quote_ident(table.schema)}.{quote_ident(table.name)} "
                    f"WHERE {quote_ident(column)} IN "
                    "(SELECT pg_catalog.jsonb_array_elements_text($1::jsonb))",
                    json_param(list(archive.ids)),
                )
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
            if not in_block:
                await channel.checked("BEGIN")
            xid = await self._current_xid(
                channel, ledger, CURRENT_XID_SQL if in_block else OWN_BLOCK_XID_SQL
            )
            await channel.checked(f"SAVEPOINT {STATEMENT_SAVEPOINT}")
            old: list[Image] = []
            if plan.select_old is not None:
                old = _unique(images(await channel.checked(plan.select_old, params)), plan)
            if plan.dry_run is not None:
                new = await self._dry_run(channel, plan, params)
            if plan.kind == "insert":
                _refuse_supplied_values(plan, new)
            if plan.conflict is not None and plan.conflict.action == "update":
                old = await self._existing(channel, plan, new)
                if old:
                    new = await self._resolve_conflicts(channel, plan, params, old)
            hooks = self._journal.statement(
                xid=xid,
                connector=table.connector,
                previous=previous_values(table, old) if old and table.ends is None else None,
                lookup_property=_lookup_property(table),
            )
            vendor = VendorWrites(self._connectors[table.connector], plan, hooks)
            if table.ends is not None:
                change = await self._associations(channel, plan, vendor, old, new)
            else:
                change = await vendor.call(old, new)
            applied = await channel.run(
                plan.apply, json_param(change.payload), params.result_formats
            )
            if applied.error is not None:
                raise QueryFailed(applied)
            await channel.checked(f"RELEASE SAVEPOINT {STATEMENT_SAVEPOINT}")
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
                    raise QueryFailed(commit)
                status = commit.status
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
            return await self.fail(channel, in_block, unsupported_error(error))
        except BaseException:
            # E.g. the upstream connection was lost mid-statement: the transaction is
            # gone with it; the entries are resolved by its verdict.
            if hooks is not None:
                await self._journal.failed(hooks)
            raise

    async def _current_xid(self, channel: UpstreamChannel, ledger: TxLedger, sql: str) -> int:
        """The client transaction's xid, asked for every statement: a transaction can
        end and another begin without the proxy seeing a ReadyForQuery in between (a
        pipeline with COMMIT and BEGIN before its Sync, COMMIT AND CHAIN). A new xid
        means the ledger's entries belong to a transaction that has ended: they are
        handed to the journal, which resolves them by that transaction's verdict."""
        xid = int((await channel.checked(sql)).rows[0][0] or b"0")
        if ledger.xid is not None and ledger.xid != xid:
            previous, entries = ledger.end()
            self._journal.ended(previous, entries)
        ledger.xid = xid
        return xid

    async def _associations(
        self,
        channel: UpstreamChannel,
        plan: WritePlan,
        vendor: VendorWrites,
        old: list[Image],
        new: list[Image],
    ) -> ApiChange:
        """Association rows: the pair is known before the call, so an INSERT is tried
        locally first under a savepoint: a pair that already exists (or violates another
        local constraint) fails with PostgreSQL's own error before the vendor is asked,
        and compensation can never remove an association that existed before."""
        if plan.kind != "delete":
            if any(row.get("labels") for row in new):
                raise Unsupported(
                    f"labelled associations in {plan.table.display} are not supported yet",
                    "Leave labels NULL: the default association is created.",
                )
            await channel.checked(f"SAVEPOINT {STAGE_SAVEPOINT}")
            await channel.checked(plan.apply, json_param(association_rows(plan.table, new)))
            await channel.checked(f"ROLLBACK TO SAVEPOINT {STAGE_SAVEPOINT}")
            await channel.checked(f"RELEASE SAVEPOINT {STAGE_SAVEPOINT}")
        return await vendor.associate(old, new)

    async def fail(
        self, channel: UpstreamChannel, in_block: bool, error: StatementError, aborted: bool = False
    ) -> Failure:
        """Leave the session as PostgreSQL would after this statement failed."""
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
        assert plan.dry_run is not None
        await channel.checked(f"SAVEPOINT {STAGE_SAVEPOINT}")
        for statement in plan.stage:
            await channel.checked(statement)
        new = images(await channel.checked(plan.dry_run, params))
        await channel.checked(f"ROLLBACK TO SAVEPOINT {STAGE_SAVEPOINT}")
        await channel.checked(f"RELEASE SAVEPOINT {STAGE_SAVEPOINT}")
        return new

    async def _existing(
        self, channel: UpstreamChannel, plan: WritePlan, new: list[Image]
    ) -> list[Image]:
        """ON CONFLICT DO UPDATE: lock and read the local rows the new rows conflict with."""
        assert plan.conflict is not None
        key = plan.conflict.key_column
        keys = [str(row[key]) for row in new if row.get(key) is not None]
        if not keys:
            return []
        result = await channel.checked(plan.conflict.select_existing, json_param(keys))
        return images(result)

    async def _resolve_conflicts(
        self,
        channel: UpstreamChannel,
        plan: WritePlan,
        params: StatementParams,
        existing: list[Image],
    ) -> list[Image]:
        """Let PostgreSQL run the client's whole ON CONFLICT clause (SET expressions,
        WHERE) on a staging copy holding the conflicting rows. Returns the rows the
        statement inserts or updates, in order; rows it leaves alone are dropped.
        Updated rows keep their id: the executor tells them apart by it."""
        conflict = plan.conflict
        assert conflict is not None
        await channel.checked(f"SAVEPOINT {STAGE_SAVEPOINT}")
        for statement in plan.stage:
            await channel.checked(statement)
        await channel.checked(conflict.seed[0])
        await channel.checked(conflict.seed[1], json_param(existing))
        result = await channel.checked(conflict.dry_run, params)
        await channel.checked(f"ROLLBACK TO SAVEPOINT {STAGE_SAVEPOINT}")
        await channel.checked(f"RELEASE SAVEPOINT {STAGE_SAVEPOINT}")
        return [json.loads(row[0]) for row in result.rows if row[0] is not None]


def _failed_value(plan: WritePlan, error: ApiError, new: list[Image]) -> object | None:
    """The value of the column the vendor blamed, in the row that failed (plain INSERT
    and UPDATE send rows in statement order, so the vendor's index is the row's)."""
    column = plan.table.column_of(error.column) if error.column else None
    index = error.input_index
    if column is None or index is None or plan.conflict is not None or index >= len(new):
        return None
    return new[index].get(column)


def _refuse_supplied_values(plan: WritePlan, new: list[Image]) -> None:
    """The API assigns the id and the read-only columns: an INSERT that gives one of
    them a value (even positionally) is refused; naming it with NULL/DEFAULT is fine."""
    table = plan.table
    named = plan.insert_columns or tuple(c.name for c in table.columns)
    for column in named:
        assigned = column in table.read_only or column == table.id_column
        if assigned and any(row.get(column) is not None for row in new):
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
