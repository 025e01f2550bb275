"""The client's transaction boundaries, as they concern the vendor changes made in it.

The interceptor calls in here around transaction-control statements of a transaction
that holds vendor changes (see ``proxy.writes.ledger``): archives deferred by DELETEs
run just before the COMMIT that makes them final; a successful ``ROLLBACK TO`` hands
the journal entries made after the savepoint over for compensation. When the
transaction ends, however it ends, the session hands its entries to the journal,
which asks PostgreSQL for the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from proxy.backend.channel import UpstreamChannel
from proxy.sql.txcontrol import TxControl, TxKind
from proxy.wire.messages.error_response import PgError
from proxy.wire.messages.ready_for_query import FAILED_TRANSACTION, IDLE
from proxy.writes.ledger import TxLedger
from proxy.writes.outcome import Failure, StatementError, UpstreamError


class TransactionJournal(Protocol):
    """What the live path tells the journal."""

    async def rolled_back(self, entry_ids: Sequence[int]) -> None:
        """These entries' changes were undone locally (ROLLBACK TO, a failed
        statement): record it durably, then compensate them."""

    def ended(self, xid: int | None, entry_ids: Sequence[int]) -> None:
        """The transaction ended: resolve its entries by PostgreSQL's verdict."""


class DeferredArchiver(Protocol):
    async def archive_deferred(
        self, channel: UpstreamChannel, ledger: TxLedger
    ) -> Failure | None: ...

    async def archive_committed(self, ledger: TxLedger) -> None: ...

    async def forget_postponed(self, ledger: TxLedger) -> None: ...


class TransactionControl:
    """One session's handling of transaction control while it holds vendor changes."""

    def __init__(
        self,
        channel: UpstreamChannel,
        ledger: TxLedger,
        journal: TransactionJournal,
        archiver: DeferredArchiver,
        tx_status: int,
    ) -> None:
        self._channel = channel
        self._ledger = ledger
        self._journal = journal
        self._archiver = archiver
        self._tx_status = tx_status
        #: Statements of the current text already handled before they ran.
        self._handled: set[int] = set()

    def status_changed(self, status: int) -> None:
        self._tx_status = status

    async def before(self, controls: Sequence[TxControl]) -> Failure | None:
        """Before the statements run: a rollback that is certain to happen compensates
        first; a COMMIT first archives what DELETEs deferred.

        A failure is the COMMIT's failure: the upstream transaction is rolled back, the
        client sees the error (and an idle session afterwards, as after a failed COMMIT)."""
        self._handled = set()
        refusal = self._refusal(controls)
        if refusal is not None:
            return refusal  # nothing done: the text does not run
        if controls and controls[0].index == 0 and await self._undo_first(controls[0]):
            self._handled.add(0)
        if not self._ledger.deferred or self._tx_status == FAILED_TRANSACTION:
            return None
        if not any(c.kind is TxKind.COMMIT for c in controls if c.index not in self._handled):
            return None
        self._ledger.committing = True
        failure = await self._archiver.archive_deferred(self._channel, self._ledger)
        if failure is None:
            return None
        self._ledger.committing = False
        rolled = await self._channel.run("ROLLBACK")
        return Failure(failure.error, rolled.status if rolled.error is None else IDLE)

    def _refusal(self, controls: Sequence[TxControl]) -> Failure | None:
        """Texts that cannot run while DELETEs wait for COMMIT, refused before anything
        is done: PREPARE TRANSACTION (the archive could only run at COMMIT PREPARED,
        which may come from anywhere), and a COMMIT that is not the text's first
        statement (the archive must come just before it)."""
        if not self._ledger.deferred or self._tx_status == FAILED_TRANSACTION:
            return None
        ends = [c for c in controls if c.kind in (TxKind.COMMIT, TxKind.PREPARE)]
        if any(c.kind is TxKind.PREPARE for c in ends):
            message = "PREPARE TRANSACTION after a DELETE on a synced table is not supported"
            hint = "Commit the transaction directly: the vendor archive runs just before it."
        elif len(ends) > 1 or (ends and ends[0].index != 0):
            message = "COMMIT after a DELETE on a synced table must be sent on its own"
            hint = "Send COMMIT as a separate statement: the vendor archive runs just before it."
        else:
            return None
        return Failure(PgError("0A000", message, hint=hint), self._tx_status)

    async def _undo_first(self, control: TxControl) -> bool:
        """Compensate before forwarding a rollback — ROLLBACK, COMMIT of an aborted
        transaction, ROLLBACK TO SAVEPOINT — while the transaction still holds its row
        locks: a session waiting to write the same rows reaches the vendor only after it
        has been restored. A savepoint the ledger did not see being made was made before
        the transaction's first vendor change (the ledger follows every later one), so
        rolling back to it undoes them all. True: done here."""
        ledger = self._ledger
        aborted = self._tx_status == FAILED_TRANSACTION
        if control.kind is TxKind.ROLLBACK or (control.kind is TxKind.COMMIT and aborted):
            undone = ledger.discard()
        elif control.kind is TxKind.ROLLBACK_TO:
            undone = ledger.rollback_to(control.savepoint or "")
        else:
            return False
        if undone:
            await self._journal.rolled_back(undone)
        return True

    async def after(self, done: Sequence[TxControl]) -> None:
        """These statements succeeded: follow their savepoints in the ledger (and send
        the archives a SERIALIZABLE transaction's successful COMMIT was waiting for)."""
        ledger = self._ledger
        if ledger.after_commit is not None:
            if any(c.kind is TxKind.COMMIT for c in done):
                await self._archiver.archive_committed(ledger)
            else:
                await self._archiver.forget_postponed(ledger)
        for control in done:
            if control.ends_transaction and control.chain:
                # AND CHAIN: a new transaction starts at once, ReadyForQuery stays 'T'.
                xid, entries = ledger.end()
                self._journal.ended(xid, entries)
                continue
            if control.index in self._handled:
                continue
            name = control.savepoint or ""
            if control.kind is TxKind.SAVEPOINT:
                ledger.savepoint(name)
            elif control.kind is TxKind.RELEASE:
                ledger.release(name)
            elif control.kind is TxKind.ROLLBACK_TO:
                undone = ledger.rollback_to(name)
                if undone:
                    await self._journal.rolled_back(undone)

    async def end_proxy_block(self, failed: bool) -> StatementError | None:
        """The client's Sync ends the block the proxy opened for its implicit
        transaction: commit it (deferred archives first), or roll it back. Returns the
        error of a COMMIT that failed, for the client."""
        channel = self._channel
        error = None
        if not failed:
            archive_failure = await self._archiver.archive_deferred(channel, self._ledger)
            if archive_failure is not None:
                failed = True
                error = archive_failure.error
        result = await channel.run("ROLLBACK" if failed else "COMMIT")
        if result.status != IDLE:
            # An error left the upstream skipping messages until Sync: ours was skipped.
            result = await channel.run("ROLLBACK")
        if failed or result.error is not None:
            await self._archiver.forget_postponed(self._ledger)
        else:
            await self._archiver.archive_committed(self._ledger)
        if error is not None:
            return error
        if result.error is not None and not failed:
            return UpstreamError(result.error)
        return None
