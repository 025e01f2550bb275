"""Execute a planned synced write on the client's own upstream connection, inside
its transaction: read the old images, let PostgreSQL compute the new ones, call the
vendor API, then apply the API's answer locally and answer with the client's own
RETURNING list and PostgreSQL's own CommandComplete tag.

Statement atomicity: outside a transaction block the executor opens one and commits
it; inside one it works under a savepoint. If the API rejects the write, nothing is
written and the client gets the mapped error; inside a block the transaction is left
aborted, exactly as after any failed statement. If the local apply or the COMMIT
fails after the API accepted, the API change is compensated.

The vendor calls go through ``CallHooks`` so that a durable journal can record each
one before it is sent (DESIGN 4.3).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from proxy.backend.channel import QueryFailed, Result, UpstreamChannel
from proxy.backend.params import NO_PARAMS, StatementParams, json_param
from proxy.connectors.base import ApiError, ApiObject, CallHooks, Connector, NoHooks
from proxy.wire.messages.ready_for_query import IN_TRANSACTION
from proxy.writes.errors import api_error, unsupported_error
from proxy.writes.ledger import TxLedger
from proxy.writes.outcome import ApiChange, Failure, Outcome, StatementError, Success, UpstreamError
from proxy.writes.plan import STAGE_SAVEPOINT, Unsupported, WritePlan, assigned_error
from proxy.writes.tables import SyncedTable

log = logging.getLogger(__name__)

STATEMENT_SAVEPOINT = "writeproxy_statement"
#: Leaves a transaction block aborted, as any failed statement does.
ABORT_SQL = (
    "DO $writeproxy$ BEGIN RAISE EXCEPTION 'writeproxy: synced write failed'; END $writeproxy$"
)

Image = dict[str, Any]


def images(result: Result) -> list[Image]:
    return [json.loads(row[0]) for row in result.rows if row[0] is not None]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class WriteExecutor:
    """Runs planned writes; one per worker, shared by its sessions."""

    def __init__(self, connectors: Mapping[str, Connector], hooks: CallHooks | None = None):
        self._connectors = connectors
        self._hooks = hooks or NoHooks()

    async def aclose(self) -> None:
        """Close the connectors' HTTP clients (worker shutdown)."""
        for connector in self._connectors.values():
            await connector.aclose()

    # -- the transaction's boundaries (proxy.frontend.transaction) -----------------

    async def rolled_back(self, entry_ids: Sequence[int]) -> None:
        return None

    def ended(self, xid: int | None, entry_ids: Sequence[int]) -> None:
        return None

    async def archive_deferred(self, channel: UpstreamChannel, ledger: TxLedger) -> Failure | None:
        return None

    async def execute(
        self,
        channel: UpstreamChannel,
        plan: WritePlan,
        in_block: bool,
        params: StatementParams = NO_PARAMS,
    ) -> Outcome:
        change: ApiChange | None = None
        new: list[Image] = []
        try:
            if not in_block:
                await channel.checked("BEGIN")
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
            if plan.table.ends is not None:
                change = await self._associations(channel, plan, old, new)
            else:
                change = await self._call_api(plan, old, new)
            applied = await channel.run(
                plan.apply, json_param(change.payload), params.result_formats
            )
            if applied.error is not None:
                raise QueryFailed(applied)
            await channel.checked(f"RELEASE SAVEPOINT {STATEMENT_SAVEPOINT}")
            status = IN_TRANSACTION
            if not in_block:
                commit = await channel.run("COMMIT")
                if commit.error is not None:
                    raise QueryFailed(commit)
                status = commit.status
            return Success(applied.row_description, applied.raw_rows, applied.tag, status, change)
        except QueryFailed as failed:
            await compensate(change)
            assert failed.result.error is not None
            return await self.fail(channel, in_block, UpstreamError(failed.result.error), True)
        except ApiError as error:
            value = _failed_value(plan, error, new)
            return await self.fail(channel, in_block, api_error(error, plan.table, value))
        except Unsupported as error:
            return await self.fail(channel, in_block, unsupported_error(error))

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

    def _connector(self, table: SyncedTable) -> Connector:
        return self._connectors[table.connector]

    async def _call_api(self, plan: WritePlan, old: list[Image], new: list[Image]) -> ApiChange:
        if plan.kind == "insert":
            return await self._insert(plan, new, old)
        if plan.kind == "update":
            return await self._update(plan, old, new)
        return await self._delete(plan, old)

    async def _associations(
        self, channel: UpstreamChannel, plan: WritePlan, old: list[Image], new: list[Image]
    ) -> ApiChange:
        """Association rows: INSERT associates each pair, DELETE removes it (v4 API).

        The pair is known before the call, so the local insert is tried first under a
        savepoint: a pair that already exists (or violates another local constraint)
        fails with PostgreSQL's own error before the vendor is asked, and compensation
        can never remove an association that existed before."""
        table = plan.table
        assert table.ends is not None
        (first, first_type), (second, second_type) = table.ends
        connector = self._connector(table)
        if plan.kind == "delete":
            pairs = [(str(row[first]), str(row[second])) for row in old]
            if pairs:
                await connector.associate(
                    first_type, second_type, pairs, remove=True, hooks=self._hooks
                )

            async def restore() -> None:
                await connector.associate(first_type, second_type, pairs, hooks=self._hooks)

            return ApiChange([list(pair) for pair in pairs], restore if pairs else None)
        if any(row.get("labels") for row in new):
            raise Unsupported(
                f"labelled associations in {table.display} are not supported yet",
                "Leave labels NULL: the default association is created.",
            )
        now = _now()
        payload = [
            _merge(table, row, None, {"_sync_inserted_at": now, "_sync_updated_at": now})
            for row in new
        ]
        await channel.checked(f"SAVEPOINT {STAGE_SAVEPOINT}")
        await channel.checked(plan.apply, json_param(payload))
        await channel.checked(f"ROLLBACK TO SAVEPOINT {STAGE_SAVEPOINT}")
        await channel.checked(f"RELEASE SAVEPOINT {STAGE_SAVEPOINT}")
        pairs = [(str(row[first]), str(row[second])) for row in new]
        if pairs:
            await connector.associate(first_type, second_type, pairs, hooks=self._hooks)

        async def remove() -> None:
            await connector.associate(
                first_type, second_type, pairs, remove=True, hooks=self._hooks
            )

        return ApiChange(payload, remove if pairs else None)

    async def _insert(self, plan: WritePlan, new: list[Image], existing: list[Image]) -> ApiChange:
        table = plan.table
        if not new:
            return ApiChange([])
        connector = self._connector(table)
        conflict = plan.conflict
        if conflict is not None and conflict.action == "nothing":
            new = await self._absent(plan, new)
        if not new:
            return ApiChange([])
        updated: list[str] = []
        before = {str(row[table.id_column]): row for row in existing}
        objects: list[ApiObject | None]
        if conflict is not None and conflict.action == "update":
            # Rows PostgreSQL inserted go to the vendor upsert by key (the vendor may
            # know the key even if this database does not yet); rows it updated send
            # only the properties that changed.
            fresh = [row for row in new if row.get(table.id_column) is None]
            key = table.property_of(conflict.key_column) or conflict.key_column
            inserted = iter(
                await connector.upsert(
                    table.object_type,
                    key,
                    [_properties(table, r) for r in fresh],
                    hooks=self._hooks,
                )
                if fresh
                else []
            )
            changed = await self._update_changed(table, before, new)
            objects = [
                next(inserted)
                if row.get(table.id_column) is None
                else changed.get(str(row[table.id_column]))
                for row in new
            ]
            created = [o.id for o in objects if o is not None and o.created is True]
            updated = [o.id for o in objects if o is not None and o.created is not True]
        else:
            rows = [_properties(table, row) for row in new]
            objects = list(await connector.create(table.object_type, rows, hooks=self._hooks))
            created = [obj.id for obj in objects if obj is not None]

        async def undo() -> None:
            await connector.archive(table.object_type, created, hooks=self._hooks)
            await self._restore(table, before, updated)

        now = _now()
        payload = [
            _merge(table, row, obj, {"_sync_inserted_at": now, "_sync_updated_at": now})
            for row, obj in zip(new, objects, strict=True)
        ]
        return ApiChange(payload, undo if created or updated else None)

    async def _absent(self, plan: WritePlan, new: list[Image]) -> list[Image]:
        """ON CONFLICT DO NOTHING: keep the rows whose key the vendor does not know."""
        table = plan.table
        assert plan.conflict is not None
        column = plan.conflict.key_column
        key = table.property_of(column) or column
        connector = self._connector(table)
        absent = []
        for row in new:
            value = row.get(column)
            if (
                value is None
                or await connector.get(table.object_type, str(value), id_property=key) is None
            ):
                absent.append(row)
        return absent

    async def _update(self, plan: WritePlan, old: list[Image], new: list[Image]) -> ApiChange:
        table = plan.table
        old_by_id = {str(row[table.id_column]): row for row in old}
        objects = await self._update_changed(table, old_by_id, new)
        changed = list(objects)

        async def undo() -> None:
            await self._restore(table, old_by_id, changed)

        now = _now()
        payload = [
            _merge(
                table,
                _keep_sync_columns(table, row, old_by_id.get(str(row[table.id_column]), row)),
                objects.get(str(row[table.id_column])),
                {"_sync_updated_at": now},
            )
            for row in new
        ]
        return ApiChange(payload, undo if changed else None)

    async def _update_changed(
        self, table: SyncedTable, old_by_id: Mapping[str, Image], new: list[Image]
    ) -> dict[str, ApiObject]:
        """Send each existing row's changed properties (only those); rows that did not
        change are not sent. On failure, restore what was applied and re-raise."""
        changes: list[tuple[str, dict[str, Any]]] = []
        for row in new:
            ident = row.get(table.id_column)
            if ident is None or str(ident) not in old_by_id:
                continue
            before = old_by_id[str(ident)]
            diff = {
                prop: row.get(column)
                for column, prop in table.properties.items()
                if row.get(column) != before.get(column)
            }
            if diff:
                changes.append((str(ident), diff))
        if not changes:
            return {}
        try:
            objects = await self._connector(table).update(
                table.object_type, changes, hooks=self._hooks
            )
        except ApiError as error:
            await self._restore(table, old_by_id, list(error.applied))
            raise
        return {obj.id: obj for obj in objects}

    async def _restore(
        self, table: SyncedTable, old_by_id: Mapping[Any, Image], ids: list[str]
    ) -> None:
        """Compensate updates the API applied: write the old property values back."""
        if not ids:
            return
        by_text = {str(key): row for key, row in old_by_id.items()}
        restore = [
            (obj_id, {prop: by_text[obj_id].get(col) for col, prop in table.properties.items()})
            for obj_id in ids
            if obj_id in by_text
        ]
        try:
            await self._connector(table).update(table.object_type, restore, hooks=self._hooks)
        except ApiError:
            log.exception(
                "could not restore %s objects %s after a failed write", table.display, ids
            )

    async def _delete(self, plan: WritePlan, old: list[Image]) -> ApiChange:
        table = plan.table
        ids = [str(row[table.id_column]) for row in old]
        if ids:
            await self._connector(table).archive(table.object_type, ids, hooks=self._hooks)
        return ApiChange(ids)


async def compensate(change: ApiChange | None) -> None:
    if change is not None and change.undo is not None:
        try:
            await change.undo()
        except ApiError:
            log.exception("compensation of a failed synced write failed")


async def compensate_all(changes: list[ApiChange]) -> None:
    """Undo several statements' API changes, the latest first."""
    for change in reversed(changes):
        await compensate(change)


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


def _keep_sync_columns(table: SyncedTable, row: Image, before: Image) -> Image:
    """The proxy maintains the sync columns: an UPDATE's own assignments to them are
    replaced by the old values (and then by the proxy's, see _merge)."""
    return {**row, **{column: before.get(column) for column in table.sync_columns}}


def _properties(table: SyncedTable, row: Image, columns: set[str] | None = None) -> dict[str, Any]:
    """The row's vendor properties (only those of ``columns`` when given)."""
    return {
        prop: row.get(column)
        for column, prop in table.properties.items()
        if columns is None or column in columns
    }


def _merge(
    table: SyncedTable, row: Image, obj: ApiObject | None, sync_values: Mapping[str, str]
) -> Image:
    """The row to apply locally: PostgreSQL's new image with the API's id and values."""
    merged = dict(row)
    for column, value in sync_values.items():
        if column in table.sync_columns:
            merged[column] = value
    if obj is None:
        return merged
    merged[table.id_column] = obj.id
    for column, prop in table.vendor_columns.items():
        if prop in obj.properties:
            merged[column] = obj.properties[prop]
    if "_updated_at" in table.sync_columns:
        merged["_updated_at"] = obj.updated_at
    return merged
