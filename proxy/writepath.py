"""The synced-write machinery of one worker, assembled and run as a lifespan.

Startup: the vendor connectors, the journal's connection pool, its resolver, and a
first recovery pass over every open journal entry — before the worker listens, so
what a crashed proxy left behind is resolved without waiting for client traffic.
Then the recovery loop runs every ``journal_recovery_interval`` seconds, and checks
that the guard (``proxy.guard``) is still installed. Shutdown
stops the loop and closes the journal and the connectors (after the sessions and
their background resolutions, see ``proxy.worker``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from datetime import timedelta

from proxy.config import Settings
from proxy.connectors import connector_from, connector_settings
from proxy.connectors.base import Connector
from proxy.connectors.ratelimit import RateBudget
from proxy.guard import GuardKeeper, install_guard
from proxy.journal import Journal, RecoveryLoop, Resolver
from proxy.journal.budget import PostgresBudget
from proxy.writes.executor import WriteExecutor
from proxy.writes.journaling import LiveJournal, Spawn
from proxy.writes.router import WriteRouter
from proxy.writes.tables import SyncedTables, load_synced_tables, quote_ident

log = logging.getLogger(__name__)


def build_connectors(
    tables: SyncedTables,
    workers: int = 1,
    budget: RateBudget | None = None,
    only: Collection[str] | None = None,
) -> dict[str, Connector]:
    """One connector per configured vendor account (settings already validated by
    ``load_synced_tables`` at startup, from the same environment), or per name in
    ``only``. Each of the proxy's ``workers`` paces itself to its part of the account's
    rate budget, so together they keep to it (the vendor sees one client, not N); with
    ``rate_limit_shared`` and a ``budget``, every worker and replica naming the same
    account spends from that one window instead."""
    connectors: dict[str, Connector] = {}
    for name, conf in tables.connectors.items():
        if only is not None and name not in only:
            continue
        settings = connector_settings(name, conf.kind, conf.connector_options(), os.environ)
        shared = settings.rate_limit_shared and budget is not None
        if not shared:
            share = settings.rate_limit_share / workers
            settings = settings.model_copy(update={"rate_limit_share": share})
        connector = connector_from(settings, conf.kind)
        if shared:
            assert budget is not None
            connector.use_rate_budget(budget, settings.rate_limit_account or name)
        connectors[name] = connector
    return connectors


def _synced_map(tables: SyncedTables) -> dict[tuple[str, str], tuple[str, str]]:
    """(connector, object type) -> (synced table, id column), for the resolver."""
    return {
        (t.connector, t.object_type): (t.qualified, quote_ident(t.id_column))
        for t in tables.tables.values()
        if t.ends is None
    }


class WritePath:
    """Connectors + journal + resolver + router; None of it when nothing is synced."""

    def __init__(self, settings: Settings, tables: SyncedTables, spawn: Spawn) -> None:
        assert settings.upstream_url is not None
        self.journal = Journal(
            settings.upstream_url,
            schema=settings.journal_schema,
            lease_s=settings.journal_lease_seconds,
            connect_timeout=settings.connect_timeout,
        )
        self._budget = PostgresBudget(self.journal)
        self._connectors = build_connectors(tables, settings.workers, self._budget)
        self._settings = settings
        #: Connectors a reload replaced: closed at shutdown (a call may still use one,
        #: e.g. waiting for its rate-limit slot; an idle one holds a few kilobytes).
        self._retired: list[Connector] = []
        self.resolver = Resolver(self.journal, self._connectors, synced=_synced_map(tables))
        self.router = WriteRouter(
            tables,
            WriteExecutor(
                self._connectors,
                LiveJournal(self.journal, self.resolver, spawn),
                [table for table in tables.tables.values() if table.ends is not None],
                tables.guard,
            ),
        )
        executor = self.router.executor
        self._guard = guard = GuardKeeper(
            lambda: self.journal.pool,
            settings.journal_schema,
            list(tables.tables.values()),
            settings.sync_roles,
            executor.use_guard_key,
        )
        retention = settings.journal_retention_days
        self._recovery = RecoveryLoop(
            self.resolver,
            interval_s=settings.journal_recovery_interval,
            retention=timedelta(days=retention) if retention > 0 else None,
            upkeep=guard.check,
        )

    async def start(self) -> None:
        await self.journal.open()
        report = await self._recovery.start()
        if report.outcomes:
            log.info("journal recovery at startup: %s", report)

    async def reload(self, settings: Settings | None = None) -> SyncedTables:
        """Read the catalog again (SIGHUP, DDL): synced tables, views and rules created
        since startup, with ``settings`` when the configuration was read again (new
        synced tables, connectors). The guard is installed on new tables first; then
        every part of the write path switches to the new map and connectors at once,
        so a session's next statement sees them. On any error nothing changes."""
        settings = settings or self._settings
        assert settings.upstream_url is not None
        tables = await load_synced_tables(
            settings.upstream_url, settings.connectors, settings.synced_tables
        )
        async with self.journal.pool.acquire() as conn:
            tables.guard = await install_guard(
                conn,
                settings.journal_schema,
                tables.tables.values(),
                settings.sync_roles,
                lock_timeout_ms=3000,
            )
            tables.database = str(await conn.fetchval("SELECT pg_catalog.current_database()"))
        changed = {
            name
            for name in {*settings.connectors, *self._settings.connectors}
            if settings.connectors.get(name) != self._settings.connectors.get(name)
        }
        if changed:
            fresh = build_connectors(tables, settings.workers, self._budget, only=changed)
            self._replace_connectors(changed, fresh)
        self._settings = settings
        self._guard.replace_tables(list(tables.tables.values()))
        self.resolver.replace_synced(_synced_map(tables))
        self.router.replace_tables(tables)
        return tables

    def _replace_connectors(self, changed: Collection[str], fresh: dict[str, Connector]) -> None:
        """The connectors whose settings changed (added, altered, removed): the
        executor, the deferred archives and the resolver share one dict, switched at
        once; the unchanged keep their rate windows and tokens. Calls in flight finish
        on the connectors they started with."""
        for name in changed:
            retired = self._connectors.pop(name, None)
            if retired is not None:
                self._retired.append(retired)
        self._connectors.update(fresh)

    async def stop(self) -> None:
        await self._recovery.stop()
        await self.router.executor.aclose()
        for connector in self._retired:
            await connector.aclose()
        self._retired.clear()
        await self.journal.close()
