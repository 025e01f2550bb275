"""Synced tables built as at startup, with HubSpot's naming and no HTTP client (the
HubSpot mapping asks HubSpot nothing), for unit tests of the write layer."""

from __future__ import annotations

from proxy.connectors.hubspot import naming
from proxy.connectors.mapping import ObjectMapping, TableShape
from proxy.writes import tables
from proxy.writes.settings import SyncedTableSettings
from proxy.writes.tables import Column, SyncedTable


class HubSpotNaming:
    async def map_table(self, shape: TableShape) -> ObjectMapping:
        return naming.map_table(shape)


def build_table(
    key: tuple[str, str],
    columns: list[Column],
    connector: str,
    entry: SyncedTableSettings | None,
    uniques: dict[str, str],
) -> SyncedTable:
    """Drives the coroutine by hand: nothing in it waits (so it also works inside
    async tests, where asyncio.run cannot)."""
    coroutine = tables._build_table(key, columns, connector, HubSpotNaming(), entry, uniques)  # type: ignore[arg-type]
    try:
        coroutine.send(None)
    except StopIteration as done:
        table: SyncedTable = done.value
        return table
    raise AssertionError("building a HubSpot table waited for something")
