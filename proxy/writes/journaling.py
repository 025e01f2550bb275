"""The write path's use of the durable journal (``proxy.journal``).

Per synced statement, ``StatementJournal`` is the connector's ``CallHooks``: every
vendor call is journaled (committed on the proxy's own connection) before it is sent
and its answer after. The journal being unreachable is a vendor call that did not
happen: the statement fails with a retryable error and nothing reaches the vendor.

For the live path, ``LiveJournal`` is what a session tells when its transaction ends
or a savepoint is rolled back: the entries are resolved at once by PostgreSQL's
verdict (retried briefly while the verdict is still "in progress", e.g. while the
server notices a dropped client); the recovery loop catches anything left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import asyncpg

from proxy.connectors.base import ApiError, CallOutcome, ErrorKind, Operation, VendorCall
from proxy.journal import EntryState, Journal, JournalHooks, Resolver
from proxy.journal.model import error_text
from proxy.journal.resolver import Outcome as Resolution

log = logging.getLogger(__name__)

#: Delays between live resolution attempts of entries whose transaction is still in
#: progress (PostgreSQL aborts a dropped client's transaction when it notices).
LIVE_RETRY_DELAYS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.5, 0.5, 1.0)
_UNSETTLED = frozenset({Resolution.WAITING, Resolution.BUSY, Resolution.RETRYING})

Spawn = Callable[[Coroutine[Any, Any, Any]], object]


def journal_unavailable(what: str, outcome: str) -> ApiError:
    """The journal could not be used: a retryable failure of the statement."""
    return ApiError(
        ErrorKind.UNAVAILABLE,
        f"writeproxy could not {what}",
        retry_safe=True,
        advice=f"{outcome} Check that the proxy's journal (schema writeproxy) is reachable "
        "and not locked.",
    )


class StatementJournal:
    """``CallHooks`` for one statement: journal each call before and after it."""

    def __init__(self, hooks: JournalHooks, journal: Journal) -> None:
        self._hooks = hooks
        self._hooks_journal = journal

    @property
    def entry_ids(self) -> list[int]:
        return self._hooks.entry_ids

    async def abandon(self) -> None:
        """The statement failed: calls whose answer never came (the connector raised
        before answering its hooks) are recorded as unknown, so the resolver need not
        wait for their lease to expire before looking them up."""
        for entry_id in self._hooks.unanswered:
            try:
                await self._hooks_journal.record_outcome(entry_id, EntryState.UNKNOWN)
            except Exception as exc:  # the lease expires and recovery takes over
                log.warning("cannot record journal entry %d as unknown (%s)", entry_id, exc)

    async def before_send(self, call: VendorCall) -> None:
        try:
            try:
                await self._hooks.before_send(call)
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                # The journal was dropped under us: set it up again, once.
                log.warning("the write journal's tables are missing: creating them again")
                await self._hooks_journal.ensure_schema()
                await self._hooks.before_send(call)
        except Exception as exc:
            log.warning("cannot journal a vendor call (%s): not sending it", type(exc).__name__)
            raise journal_unavailable(
                "record the call in its write journal, so it was not sent to the vendor",
                "Nothing was sent; the statement is safe to retry.",
            ) from exc

    async def after_send(self, call: VendorCall, outcome: CallOutcome) -> None:
        try:
            await self._hooks.after_send(call, outcome)
        except Exception as exc:
            # The vendor answered but the journal did not take the answer: the entry
            # stays unanswered and the resolver looks it up and compensates it.
            log.warning("cannot journal a vendor answer (%s)", type(exc).__name__)
            raise ApiError(
                ErrorKind.OUTCOME_UNKNOWN,
                "writeproxy could not record the vendor's answer in its write journal; "
                "the journal's recovery will undo the call",
                retry_safe=False,
            ) from exc


class LiveJournal:
    """The journal as the sessions and the executor of one worker use it."""

    def __init__(self, journal: Journal, resolver: Resolver, spawn: Spawn) -> None:
        self._journal = journal
        self._resolver = resolver
        self._spawn = spawn

    def statement(
        self,
        *,
        xid: int,
        connector: str,
        previous: Mapping[str, Mapping[str, Any]] | None = None,
        lookup_property: str | None = None,
    ) -> StatementJournal:
        return StatementJournal(
            JournalHooks(
                self._journal,
                xid=xid,
                connector=connector,
                previous=previous,
                lookup_property=lookup_property,
            ),
            self._journal,
        )

    async def announce_archive(
        self, *, xid: int, connector: str, object_type: str, ids: Sequence[str]
    ) -> int:
        """Journal an archive that is sent only after its transaction's COMMIT
        (SERIALIZABLE), before that COMMIT: if the proxy dies in between, the journal
        sees the transaction committed and sends it; other sessions see it coming
        (``archiving_elsewhere``). Raises like a vendor call the journal refused."""
        call = VendorCall(Operation.ARCHIVE, object_type, tuple({"id": i} for i in ids))
        hooks = self.statement(xid=xid, connector=connector)
        await hooks.before_send(call)
        [entry_id] = hooks.entry_ids
        return entry_id

    async def archive_sent(self, entry_id: int, error: ApiError | None) -> None:
        """The announced archive was sent after the COMMIT. If the vendor refused it or
        the answer was lost, the entry stays open (``unknown``): the transaction
        committed its DELETE, so the journal sends the archive again."""
        state = EntryState.APPLIED if error is None else EntryState.UNKNOWN
        text = None if error is None else error_text(error)
        try:
            await self._journal.record_outcome(entry_id, state, error=text)
        except Exception as exc:  # the lease expires and recovery completes it
            log.warning("cannot record journal entry %d (%s)", entry_id, type(exc).__name__)

    async def archive_not_sent(self, entry_ids: Sequence[int]) -> None:
        """The COMMIT failed: the announced archives were never sent."""
        for entry_id in entry_ids:
            try:
                await self._journal.record_outcome(
                    entry_id, EntryState.FAILED, error="not sent: the COMMIT failed"
                )
            except Exception as exc:  # recovery finds nothing archived and closes it
                log.warning("cannot record journal entry %d (%s)", entry_id, type(exc).__name__)

    async def archiving_elsewhere(
        self, *, xid: int, connector: str, object_type: str, ids: Sequence[str], wait_s: float
    ) -> list[str]:
        """Of these objects, those another transaction archives or has archived. Waits
        up to ``wait_s`` for those archives to be settled, so that a retry of the
        statement that found them no longer matches the objects at the vendor."""
        try:
            found = await self._journal.archiving(connector, object_type, ids, xid)
            entries = set(found.values())
            deadline = asyncio.get_running_loop().time() + wait_s
            while entries and asyncio.get_running_loop().time() < deadline:
                entries -= await self._journal.closed(entries)
                if entries:
                    await asyncio.sleep(0.05)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("cannot read the write journal (%s)", type(exc).__name__)
            raise journal_unavailable(
                "read its write journal to check the objects this statement matched",
                "The statement is undone; it is safe to retry.",
            ) from exc
        return sorted(found)

    async def failed(self, statement: StatementJournal) -> None:
        """A statement that made vendor calls failed: nothing of it stays locally."""
        await statement.abandon()
        await self.rolled_back(statement.entry_ids)

    async def rolled_back(self, entry_ids: Sequence[int]) -> None:
        """These entries' statements were undone locally: durably so, then resolved."""
        if not entry_ids:
            return
        try:
            await self._journal.mark_rolled_back(entry_ids)
        except Exception as exc:
            # The transaction cannot commit without the proxy, and the proxy does not
            # forward anything before this returns: the session fails instead.
            log.error("cannot mark journal entries rolled back (%s)", type(exc).__name__)
            raise
        # Compensate before the client hears of the failure or its ROLLBACK is
        # forwarded: the transaction still holds its row locks, so a session waiting to
        # write the same rows reaches the vendor only after the undo. A vendor that
        # stays down holds this for a few seconds at most; the recovery loop goes on.
        await self._resolve_soon(list(entry_ids), hold=True)

    def ended(self, xid: int | None, entry_ids: Sequence[int]) -> None:
        """The transaction ended: resolve its entries now."""
        if entry_ids:
            self._spawn(self._resolve_soon(list(entry_ids)))

    async def _resolve_soon(self, ids: list[int], hold: bool = False) -> None:
        """Resolve now, and again after short delays while entries stay open. With
        ``hold`` (the caller waits), entries waiting for another transaction's verdict
        are left to the background: that transaction may be waiting for our locks."""
        pending = ids
        for delay in LIVE_RETRY_DELAYS:
            if delay:
                await asyncio.sleep(delay)
            try:
                report = await self._resolver.resolve(pending)
            except Exception as exc:
                log.warning("live journal resolution failed (%s); recovery retries", exc)
                return
            pending = [i for i in pending if report.outcomes.get(i) in _UNSETTLED]
            if hold and any(report.outcomes.get(i) is Resolution.WAITING for i in pending):
                self._spawn(self._resolve_soon(pending))
                return
            if not pending:
                return
        log.info("%d journal entries still open; the recovery loop resolves them", len(pending))
