"""From a statement's text to an outcome: classify (cheap, cached), resolve the
target tables the way the session's search_path does, refuse what cannot be
translated, plan (cached) and execute."""

from __future__ import annotations

from proxy import metrics
from proxy.backend.channel import UpstreamChannel
from proxy.backend.params import NO_PARAMS, StatementParams
from proxy.sql.classifier import Classification, WriteClassifier
from proxy.wire.messages.bind import Bind
from proxy.wire.messages.ready_for_query import IN_TRANSACTION
from proxy.writes.errors import unsupported_error
from proxy.writes.executor import WriteExecutor
from proxy.writes.ledger import TxLedger
from proxy.writes.outcome import Failure, Outcome, Success, UpstreamError
from proxy.writes.plan import Unsupported, WritePlan, plan_write
from proxy.writes.tables import SyncedTable, SyncedTables, quote_ident

TEXT_OID = 25
RESOLVE_SQL = (
    "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.oid = pg_catalog.to_regclass($1)"
)
PLAN_CACHE_SIZE = 1000


class WriteRouter:
    """One per worker: the synced tables, the classifier and the executor."""

    def __init__(self, tables: SyncedTables, executor: WriteExecutor) -> None:
        self.tables = tables
        self.classifier = WriteClassifier(tables.qualified_names)
        self.executor = executor
        self._plans: dict[tuple[str, str, str], WritePlan] = {}

    def replace_tables(self, tables: SyncedTables) -> None:
        """A catalog read again (SIGHUP): new classifier and plans, the same executor
        (its guard key and association tables updated)."""
        self.classifier = WriteClassifier(tables.qualified_names)
        self._plans = {}
        self.executor.use_guard_key(tables.guard)
        self.executor.archives.replace_associations(list(tables.tables.values()))
        self.tables = tables

    def classify(self, sql: str) -> Classification:
        return self.classifier.classify(sql)

    async def run(
        self,
        channel: UpstreamChannel,
        sql: str,
        classification: Classification,
        ledger: TxLedger,
        params: StatementParams = NO_PARAMS,
    ) -> Outcome | None:
        """Execute ``sql`` as a synced write; None when, resolved against the
        session's search_path, it does not write a synced table after all."""
        synced: list[SyncedTable] = []
        indirect: list[tuple[str, SyncedTable]] = []
        status = 0
        encoding = channel.encoding or "utf-8"
        for target in {(t.schema, t.name) for t in classification.targets}:
            name = quote_ident(target[1])
            if target[0] is not None:
                name = f"{quote_ident(target[0])}.{name}"
            resolved = await channel.run(
                RESOLVE_SQL,
                StatementParams(Bind("", "", (), (name.encode(encoding),), ()), (TEXT_OID,)),
            )
            if resolved.error is not None:
                # E.g. the transaction is aborted: PostgreSQL's own answer is the right one.
                return Failure(UpstreamError(resolved.error), resolved.status)
            status = resolved.status
            row = resolved.rows[0] if resolved.rows else None
            if row is not None and row[0] is not None and row[1] is not None:
                schema, name = channel.text(row[0]), channel.text(row[1])
                table = self.tables.get(schema, name)
                if table is not None:
                    synced.append(table)
                elif (behind := self.tables.dependent(schema, name)) is not None:
                    indirect.append((f"{schema}.{name}", behind))
        if not synced and not indirect:
            return None
        in_block = status == IN_TRANSACTION
        try:
            if channel.encoding is None:
                raise Unsupported(
                    "writes to synced tables are not supported in this session's client_encoding",
                    "SET client_encoding TO 'UTF8' (or another encoding Python can read).",
                )
            if indirect:
                relation, behind = indirect[0]
                raise Unsupported(
                    f"writing {relation} is not supported: its view or rule definition "
                    f"involves the synced table {behind.display}, which the proxy cannot "
                    "follow",
                    f"Write to {behind.display} directly.",
                )
            plan = self._plan(sql, synced[0])
        except Unsupported as error:
            metrics.synced_statement(synced[0].display if synced else "", "", "refused")
            if not in_block:
                # Nothing was started: a ROLLBACK here would only earn the client a
                # "there is no transaction in progress" WARNING.
                return Failure(unsupported_error(error), status)
            return await self.executor.fail(channel, in_block, unsupported_error(error))
        outcome = await self.executor.execute(channel, plan, in_block, ledger, params)
        result = "ok" if isinstance(outcome, Success) else "error"
        metrics.synced_statement(plan.table.display, plan.kind, result)
        return outcome

    def _plan(self, sql: str, table: SyncedTable) -> WritePlan:
        key = (sql, table.schema, table.name)
        plan = self._plans.get(key)
        if plan is None:
            plan = plan_write(sql, table)
            if len(self._plans) >= PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[key] = plan
        return plan
