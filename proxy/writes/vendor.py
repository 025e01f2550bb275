"""The vendor side of one synced statement: from PostgreSQL's old and new row images
to connector calls, and from the vendor's answers to the rows applied locally.

Nothing here undoes anything: every call goes through the statement's journal hooks,
and the journal's resolver compensates from those entries when the statement or its
transaction does not commit. Archives (DELETE) are irreversible at the vendor, so they
are not called here at all: the statement defers them to COMMIT time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from proxy.backend.params import dumps_exact, loads_exact
from proxy.connectors.base import ApiObject, CallHooks, Connector
from proxy.writes.ledger import DeferredArchive
from proxy.writes.outcome import ApiChange
from proxy.writes.plan import WritePlan
from proxy.writes.tables import SyncedTable

Image = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class VendorWrites:
    """One statement's vendor calls, through one connector and one set of hooks."""

    def __init__(self, connector: Connector, plan: WritePlan, hooks: CallHooks) -> None:
        self._connector = connector
        self._plan = plan
        self._table = plan.table
        self._hooks = hooks

    async def call(self, old: list[Image], new: list[Image]) -> ApiChange:
        kind = self._plan.kind
        if self._connector.empty_string_is_null:
            new = [self._without_empty_strings(row) for row in new]
        if kind == "insert":
            return await self._insert(new, old)
        if kind == "update":
            return await self._update(old, new)
        return self._delete(old)

    def _properties(self, row: Image) -> dict[str, Any]:
        return properties(self._table, row, json_as_text=self._connector.json_as_text)

    def _without_empty_strings(self, row: Image) -> Image:
        return {
            column: None if value == "" and column in self._table.properties else value
            for column, value in row.items()
        }

    # -- association rows -------------------------------------------------------------

    async def associate(self, old: list[Image], new: list[Image]) -> ApiChange:
        """Association rows: INSERT associates each pair, DELETE removes it (v4 API;
        both reversible, so neither is deferred). The caller has already checked the
        local insert."""
        table = self._table
        assert table.ends is not None
        (first, first_type), (second, second_type) = table.ends
        if self._plan.kind == "delete":
            pairs = [(str(row[first]), str(row[second])) for row in old]
            if pairs:
                await self._connector.associate(
                    first_type, second_type, pairs, remove=True, hooks=self._hooks
                )
            return ApiChange([list(pair) for pair in pairs])
        pairs = [(str(row[first]), str(row[second])) for row in new]
        if pairs:
            await self._connector.associate(first_type, second_type, pairs, hooks=self._hooks)
        return ApiChange(association_rows(table, new))

    # -- objects ------------------------------------------------------------------------

    async def _insert(self, new: list[Image], existing: list[Image]) -> ApiChange:
        table = self._table
        conflict = self._plan.conflict
        if new and conflict is not None and conflict.action == "nothing":
            new = await self._absent(new)
        if not new:
            return ApiChange([])
        before = {str(row[table.id_column]): row for row in existing}
        objects: list[ApiObject | None]
        adopted: tuple[str, ...]
        if conflict is not None and conflict.action == "update":
            # Rows PostgreSQL inserted go to the vendor upsert by key (the vendor may
            # know the key even if this database does not yet); rows it updated send
            # only the properties that changed.
            fresh = [row for row in new if row.get(table.id_column) is None]
            key = table.property_of(conflict.key_column) or conflict.key_column
            upserted = (
                await self._connector.upsert(
                    table.object_type,
                    key,
                    [self._properties(r) for r in fresh],
                    hooks=self._hooks,
                )
                if fresh
                else []
            )
            adopted = tuple(obj.id for obj in upserted if obj.created is not True)
            inserted = iter(upserted)
            changed = await self._update_changed(before, new)
            objects = [
                next(inserted)
                if row.get(table.id_column) is None
                else changed.get(str(row[table.id_column]))
                for row in new
            ]
        else:
            rows = [self._properties(row) for row in new]
            objects = list(await self._connector.create(table.object_type, rows, hooks=self._hooks))
            adopted = ()
        now = _now()
        payload = [
            merge(table, row, obj, {"_sync_inserted_at": now, "_sync_updated_at": now})
            for row, obj in zip(new, objects, strict=True)
        ]
        return ApiChange(payload, adopted=adopted)

    async def _absent(self, new: list[Image]) -> list[Image]:
        """ON CONFLICT DO NOTHING: keep the rows whose key the vendor does not know
        (one batch read for all of them; the vendor's unique keys, e.g. HubSpot's
        emails, compare without case)."""
        table = self._table
        assert self._plan.conflict is not None
        column = self._plan.conflict.key_column
        key = table.property_of(column) or column
        values = [str(row[column]) for row in new if row.get(column) is not None]
        if not values:
            return new
        known = await self._connector.get_many(table.object_type, values, id_property=key)
        taken = {value.casefold() for value in known}
        return [
            row
            for row in new
            if row.get(column) is None or str(row[column]).casefold() not in taken
        ]

    async def _update(self, old: list[Image], new: list[Image]) -> ApiChange:
        table = self._table
        old_by_id = {str(row[table.id_column]): row for row in old}
        objects = await self._update_changed(old_by_id, new)
        now = _now()
        payload = [
            merge(
                table,
                keep_sync_columns(table, row, old_by_id.get(str(row[table.id_column]), row)),
                objects.get(str(row[table.id_column])),
                {"_sync_updated_at": now},
            )
            for row in new
        ]
        return ApiChange(payload)

    async def _update_changed(
        self, old_by_id: Mapping[str, Image], new: list[Image]
    ) -> dict[str, ApiObject]:
        """Send each existing row's changed properties (only those); rows that did not
        change are not sent."""
        table = self._table
        changes: list[tuple[str, dict[str, Any]]] = []
        for row in new:
            ident = row.get(table.id_column)
            if ident is None or str(ident) not in old_by_id:
                continue
            before = old_by_id[str(ident)]
            sent = self._properties(row)
            diff = {
                prop: sent[prop]
                for column, prop in table.properties.items()
                if row.get(column) != before.get(column)
            }
            if diff:
                changes.append((str(ident), diff))
        if not changes:
            return {}
        objects = await self._connector.update(table.object_type, changes, hooks=self._hooks)
        return {obj.id: obj for obj in objects}

    def _delete(self, old: list[Image]) -> ApiChange:
        table = self._table
        ids = [str(row[table.id_column]) for row in old]
        keys = tuple(
            str(row[column]).casefold()
            for column in table.upsert_keys
            for row in old
            if row.get(column) is not None
        )
        archive = DeferredArchive(table.connector, table.object_type, table, tuple(ids), keys)
        return ApiChange(ids, deferred=archive if ids else None)


def previous_values(
    table: SyncedTable, old: list[Image], *, json_as_text: bool = True
) -> dict[str, dict[str, Any]]:
    """The vendor properties of the old rows, by object id: what the journal restores
    (only the properties a call changes) if the statement does not commit."""
    return {
        str(row[table.id_column]): properties(table, row, json_as_text=json_as_text)
        for row in old
        if row.get(table.id_column) is not None
    }


def association_rows(table: SyncedTable, new: list[Image]) -> list[Image]:
    now = _now()
    return [
        merge(table, row, None, {"_sync_inserted_at": now, "_sync_updated_at": now}) for row in new
    ]


def keep_sync_columns(table: SyncedTable, row: Image, before: Image) -> Image:
    """The proxy maintains the sync columns: an UPDATE's own assignments to them are
    replaced by the old values (and then by the proxy's, see merge)."""
    return {**row, **{column: before.get(column) for column in table.sync_columns}}


def _local_value(value: object, array: bool, json_column: bool) -> object:
    """A vendor's property value as the local column holds it. Vendors that store
    only text (HubSpot) give a multi-select's values ";"-joined and a json/jsonb
    column's as the JSON text it was sent; typed vendors give lists and JSON values."""
    if not isinstance(value, str):
        return value
    if array:
        return value.split(";")
    if json_column:
        try:
            return loads_exact(value)
        except ValueError:
            return value  # not JSON (set at the vendor): PostgreSQL says what it thinks
    return value


def properties(table: SyncedTable, row: Image, *, json_as_text: bool = True) -> dict[str, Any]:
    """The row's vendor properties. For a vendor that stores text, a json/jsonb
    column's value is sent as its JSON text (it comes back as that text, which
    PostgreSQL reads as the same value); typed vendors get the JSON value itself."""
    json_columns = {c.name for c in table.columns if c.is_json} if json_as_text else set()
    return {
        prop: _json_text(row.get(column)) if column in json_columns else row.get(column)
        for column, prop in table.properties.items()
    }


def _json_text(value: object) -> str | None:
    return None if value is None else dumps_exact(value)


def merge(
    table: SyncedTable, row: Image, obj: ApiObject | None, sync_values: Mapping[str, str]
) -> Image:
    """The row to apply locally: PostgreSQL's new image with the API's id and values."""
    merged = dict(row)
    for column, stamp in sync_values.items():
        if column in table.sync_columns:
            merged[column] = stamp
    if obj is None:
        return merged
    merged[table.id_column] = obj.id
    arrays = {c.name for c in table.columns if c.is_array}
    json_columns = {c.name for c in table.columns if c.is_json}
    for column, prop in table.vendor_columns.items():
        if prop in obj.properties:
            merged[column] = _local_value(
                obj.properties[prop], column in arrays, column in json_columns
            )
    if "_updated_at" in table.sync_columns:
        merged["_updated_at"] = obj.updated_at
    return merged


__all__ = ["VendorWrites", "previous_values"]
