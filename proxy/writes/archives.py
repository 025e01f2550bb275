"""The archives a transaction's DELETEs deferred to its COMMIT (an archive cannot be
undone through the vendor API): checked and sent just before the COMMIT — or, under
SERIALIZABLE, whose COMMIT may still fail its serializability check, once it succeeded —
and the local association rows the vendor drops with an archived object."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from proxy.backend.channel import UpstreamChannel
from proxy.backend.params import NO_PARAMS, StatementParams, json_param
from proxy.connectors.base import ApiError, Connector
from proxy.guard import SET_TOKEN_SQL
from proxy.wire.messages.ready_for_query import IN_TRANSACTION
from proxy.writes.errors import api_error
from proxy.writes.journaling import LiveJournal
from proxy.writes.ledger import DeferredArchive, TxLedger
from proxy.writes.outcome import Failure, UpstreamError
from proxy.writes.tables import SyncedTable, quote_ident

log = logging.getLogger(__name__)

#: The guard token for a statement of the proxy's own (``WriteExecutor._token``).
Token = Callable[[UpstreamChannel, SyncedTable, str], StatementParams]


class DeferredArchives:
    """Sends deferred archives; one per worker (the executor's)."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        journal: LiveJournal,
        associations: Sequence[SyncedTable],
        token: Token,
    ) -> None:
        self._connectors = connectors
        self._journal = journal
        self._token = token
        #: Association tables: their rows go with an archived object (the vendor drops
        #: an archived object's associations).
        self.replace_associations(associations)

    def replace_associations(self, tables: Sequence[SyncedTable]) -> None:
        #: The association tables whose rows end with an archived object.
        self._association_tables = [t for t in tables if t.ends is not None]

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
            # archive could not be undone: archive once the COMMIT succeeded, journaled
            # now (so a proxy dying after the COMMIT leaves it to the journal, and other
            # sessions' upserts do not adopt the objects meanwhile).
            for archive in deferred:
                dropped = await self._drop_associations(channel, archive)
                if dropped is not None:
                    return dropped
            announced: list[tuple[DeferredArchive, int]] = []
            try:
                for archive in deferred:
                    entry_id = await self._journal.announce_archive(
                        xid=ledger.xid,
                        connector=archive.connector,
                        object_type=archive.object_type,
                        ids=archive.ids,
                    )
                    announced.append((archive, entry_id))
            except ApiError as error:
                await self._journal.archive_not_sent([entry for _, entry in announced])
                return Failure(api_error(error, deferred[0].table), IN_TRANSACTION)
            ledger.after_commit = (ledger.xid, announced)
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
        DELETEs deferred (announced in the journal under its xid before the COMMIT, so
        a failed or lost archive stays open and the journal sends it again)."""
        postponed, ledger.after_commit = ledger.after_commit, None
        if postponed is None:
            return
        xid, archives = postponed
        for archive, entry_id in archives:
            error: ApiError | None = None
            try:
                await self._connectors[archive.connector].archive(
                    archive.object_type, list(archive.ids)
                )
            except ApiError as failed:
                error = failed
                log.warning(
                    "archive after COMMIT of %d %s failed (%s); the journal retries it",
                    len(archive.ids),
                    archive.object_type,
                    failed.kind.value,
                )
            except Exception as failed:
                # E.g. no such connector since a reload: not known to be sent. The entry
                # keeps its intent (until its lease runs out) and the journal, seeing
                # the transaction committed, sends it. The COMMIT itself succeeded.
                log.warning(
                    "archive after COMMIT of %d %s not sent (%s); the journal sends it",
                    len(archive.ids),
                    archive.object_type,
                    type(failed).__name__,
                )
                self._journal.ended(xid, [entry_id])
                continue
            except BaseException:  # cancelled: likewise, and stop here
                self._journal.ended(xid, [entry_id])
                raise
            await self._journal.archive_sent(entry_id, error)
            self._journal.ended(xid, [entry_id])

    async def forget_postponed(self, ledger: TxLedger) -> None:
        """The COMMIT failed: its transaction rolled back, its archives never run."""
        postponed, ledger.after_commit = ledger.after_commit, None
        if postponed is not None:
            await self._journal.archive_not_sent([entry for _, entry in postponed[1]])

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
                    f"WHERE {quote_ident(column)}::text OPERATOR(pg_catalog.=) ANY "
                    "(ARRAY(SELECT pg_catalog.jsonb_array_elements_text($1::jsonb)))"
                )
                await channel.checked(SET_TOKEN_SQL, self._token(channel, table, drop))
                result = await channel.run(drop, json_param(list(archive.ids)))
                if result.error is not None:
                    return Failure(UpstreamError(result.error), result.status)
        return None


async def _all_gone(connector: Connector, archive: DeferredArchive) -> bool:
    """After an archive whose answer was lost: is every object archived at the vendor?"""
    try:
        for object_id in archive.ids:
            if await connector.get(archive.object_type, object_id) is not None:
                return False
    except ApiError:
        return False
    return True
