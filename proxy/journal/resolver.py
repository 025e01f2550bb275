"""Resolving journal entries by PostgreSQL's verdict on their transactions.

``Resolver.resolve(ids)`` is the live path (right after a client's ROLLBACK, failed
COMMIT, ROLLBACK TO SAVEPOINT or disconnect); ``resolve_due()`` the recovery path
(every open entry whose time has come, including a dead proxy's once its lease has
expired); ``RecoveryLoop`` (in ``recovery``) runs the latter at startup and then
periodically, and applies the retention. The undo calls themselves are sent by
``undo``.

For each claimed entry: ``decide`` (model) picks the action; compensation runs the
entry's ``inverse`` through its connector, comparing before restoring; a missing
answer is first resolved with ``Connector.find_created`` and recorded as the entry's
results. A vendor error leaves the entry ``compensating`` and due again after a capped
exponential backoff with jitter; it is never dropped. Logs above DEBUG name entries,
operations and object types, never row values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from proxy import metrics
from proxy.connectors.base import ApiError, Connector, Operation, VendorCall

from .inverse import InverseCall, inverse, object_ids, without_written
from .model import (
    UNKNOWN,
    Action,
    Entry,
    EntryState,
    Result,
    Verdict,
    backoff,
    check_transition,
    decide,
    error_text,
)
from .store import Journal
from .undo import _run

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """What a resolution pass did with an entry."""

    WAITING = "waiting"  # its transaction is still in progress (or its answer settling)
    COMMITTED = "committed"
    COMPENSATED = "compensated"
    CONFLICT = "conflict"
    RETRYING = "retrying"  # compensation failed; due again after a backoff
    BUSY = "busy"  # someone else holds it
    SETTLED = "settled"  # no longer open (e.g. the vendor rejected the call): nothing to do
    LOST = "lost"  # our lease expired before we could record the result


@dataclass
class Report:
    outcomes: dict[int, Outcome] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes.values() if o is outcome)

    def __str__(self) -> str:
        counts = {o.value: self.count(o) for o in Outcome if self.count(o)}
        return ", ".join(f"{n} {name}" for name, n in counts.items()) or "nothing due"


class Resolver:
    def __init__(
        self,
        journal: Journal,
        connectors: Mapping[str, Connector],
        owner: str | None = None,
        *,
        batch_size: int = 100,
        concurrency: int = 4,
        lease_s: float | None = None,
        settle_s: float = 1.0,
        wait_s: float = 1.0,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 300.0,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        synced: Mapping[tuple[str, str], tuple[str, str]] | None = None,
    ) -> None:
        """``settle_s``: how old an unanswered entry must be before it is looked up
        (a lost request may still land); ``wait_s``: when to look again at an entry
        whose transaction is in progress; ``synced``: (connector, object type) ->
        (synced table, id column), whose ids a lookup never claims."""
        self._journal = journal
        self._connectors = connectors
        self._synced = dict(synced or {})
        self._owner = owner or journal.owner
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._lease_s = lease_s
        self._settle = timedelta(seconds=settle_s)
        self._wait_s = wait_s
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._jitter = jitter
        self._clock = clock

    @property
    def journal(self) -> Journal:
        return self._journal

    @property
    def connector_names(self) -> frozenset[str]:
        """The connectors whose entries this resolver claims (no others)."""
        return frozenset(self._connectors)

    def replace_synced(self, synced: Mapping[tuple[str, str], tuple[str, str]]) -> None:
        self._synced = dict(synced)

    async def resolve(self, ids: Iterable[int]) -> Report:
        """Resolve these entries now (the live path). Entries held by someone else
        are reported BUSY; those already closed (a call the vendor rejected) SETTLED;
        those whose transaction is in progress, WAITING (the recovery loop looks
        again)."""
        wanted = list(dict.fromkeys(ids))
        report = Report({i: Outcome.BUSY for i in wanted})
        # The everyday case in one round trip: answered calls of a committed
        # transaction are done (``decide``: applied + committed -> DONE).
        for entry_id in await self._journal.settle_committed(wanted, self._connectors.keys()):
            report.outcomes[entry_id] = Outcome.COMMITTED
            metrics.journal_resolved(Outcome.COMMITTED.value)
        wanted = [i for i in wanted if report.outcomes[i] is Outcome.BUSY]
        if not wanted:
            return report
        entries = await self._journal.claim_ids(
            wanted, self._owner, self._lease_s, connectors=self._connectors.keys()
        )
        claimed = {entry.id for entry in entries}
        for entry_id in await self._journal.closed(i for i in wanted if i not in claimed):
            report.outcomes[entry_id] = Outcome.SETTLED
        await self._resolve_claimed(entries, report)
        return report

    async def resolve_due(self) -> Report:
        """Claim and resolve every due entry, batch after batch."""
        report = Report()
        while True:
            entries = await self._journal.claim(
                self._batch_size, self._owner, self._lease_s, connectors=self._connectors.keys()
            )
            if not entries:
                return report
            await self._resolve_claimed(entries, report)
            if len(entries) < self._batch_size:
                return report

    async def _resolve_claimed(self, entries: list[Entry], report: Report) -> None:
        if not entries:
            return
        verdicts = await self._journal.xact_status({e.xid for e in entries})
        by_xid: dict[int, list[Entry]] = {}
        for entry in entries:
            by_xid.setdefault(entry.xid, []).append(entry)

        async def one_transaction(group: list[Entry]) -> None:
            # The latest call first: undo in the reverse order of doing.
            for entry in sorted(group, key=lambda e: e.id, reverse=True):
                outcome = await self._guarded(entry, verdicts.get(entry.xid))
                report.outcomes[entry.id] = outcome
                metrics.journal_resolved(outcome.value)
                log.debug("journal entry %d: %s", entry.id, outcome, extra=entry.log_context())

        async with asyncio.TaskGroup() as tasks:
            for group in by_xid.values():
                tasks.create_task(one_transaction(group))

    async def _guarded(self, entry: Entry, verdict: Verdict | None) -> Outcome:
        async with self._slots:
            try:
                return await self._resolve_one(entry, verdict)
            except Exception as exc:  # e.g. the journal's database went away
                log.warning(
                    "journal entry %d: resolution failed (%s); retrying later",
                    entry.id,
                    type(exc).__name__,
                )
                log.debug("journal entry %d: resolution failure", entry.id, exc_info=True)
                with contextlib.suppress(Exception):
                    await self._journal.release([entry.id], self._owner, self._retry_in(entry))
                return Outcome.RETRYING

    async def _resolve_one(self, entry: Entry, verdict: Verdict | None) -> Outcome:
        action = decide(entry, verdict, now=self._clock(), settle=self._settle)
        log.debug("journal entry %d: %s, verdict %s -> %s", entry.id, entry.state, verdict, action)
        if action is Action.WAIT:
            await self._journal.release([entry.id], self._owner, self._wait_s)
            return Outcome.WAITING
        if action is Action.DONE:
            return await self._settle_as(entry, EntryState.COMMITTED, attempted=False)
        connector = self._connectors.get(entry.connector)
        if connector is None:
            # Claims ask for this resolver's connectors only, so this is a journal that
            # ignored the filter; leave the entry untouched for a proxy that has it.
            await self._journal.release([entry.id], self._owner, 0.0)
            return Outcome.BUSY
        if action is Action.CONFLICT:
            return await self._conflict(entry, verdict, connector)
        if action is Action.COMPLETE:
            return await self._complete(entry, connector)
        return await self._compensate(entry, connector, action is Action.LOOKUP_THEN_COMPENSATE)

    async def _compensate(self, entry: Entry, connector: Connector, lookup: bool) -> Outcome:
        looked_up = None
        try:
            if lookup:
                looked_up = await self._look_up(entry, connector)
                entry = replace(entry, results=looked_up)
            problems = []
            for call in inverse(entry):
                # Checked call by call, just before each undo is sent: a later write of
                # the same object may have committed meanwhile (e.g. while we retried).
                superseded = await self._superseded(entry, [call])
                if superseded is None:  # a later write of the object is still open
                    await self._journal.release([entry.id], self._owner, self._wait_s)
                    return Outcome.WAITING
                for kept in without_written([call], superseded):
                    if problem := await _run(kept, connector):
                        problems.append(problem)
        except ApiError as error:
            return await self._failed(entry, error, results=looked_up)
        state = EntryState.CONFLICT if problems else EntryState.COMPENSATED
        return await self._settle_as(
            entry, state, results=looked_up, error="; ".join(problems) or None
        )

    async def _superseded(
        self, entry: Entry, calls: Sequence[InverseCall]
    ) -> dict[str, frozenset[str] | None] | None:
        """What later, committed journal entries wrote, by object: the properties an
        update wrote (None: the whole object — a create, upsert or archive). Undoing
        this entry there would overwrite that write (a restore would put back a stale
        value; an archive would remove an object a committed upsert adopted), so those
        are left alone; the entry's other properties are still restored.

        None: wait. A later write's transaction is still in progress (its verdict
        decides), or a later write was rolled back and its own undo is still to come:
        the vendor holds that write's value, which neither the later undo nor this one
        expects, so this undo would call it a conflict; the later undo restores the
        value both of them found (the earlier write was already undone locally), and
        this one then finds its object as it expects."""
        ids = object_ids(calls)
        later = await self._journal.later_writers(entry, ids) if ids else {}
        if not later:
            return {}
        verdicts = await self._journal.xact_status({w.xid for ws in later.values() for w in ws})
        waiting: set[int] = set()
        superseded: dict[str, frozenset[str] | None] = {}
        for oid, writes in later.items():
            for write in writes:
                verdict = verdicts.get(write.xid)
                if write.rolled_back or verdict is Verdict.ABORTED:
                    if write.open:
                        waiting.add(write.xid)
                    continue
                if verdict is Verdict.IN_PROGRESS:
                    waiting.add(write.xid)
                    continue
                if verdict is not Verdict.COMMITTED:
                    continue
                if write.properties is None or superseded.get(oid, frozenset()) is None:
                    superseded[oid] = None
                else:
                    superseded[oid] = write.properties | (superseded.get(oid) or frozenset())
        if waiting:
            log.info(
                "journal entry %d: waiting for transaction(s) %s, which wrote the same "
                "object(s) since (their verdict, or their undo)",
                entry.id,
                ", ".join(map(str, sorted(waiting))),
            )
            return None
        if superseded:
            log.info(
                "journal entry %d: %d object(s) written since by committed transactions; "
                "not undone there",
                entry.id,
                len(superseded),
            )
        return superseded

    async def _look_up(self, entry: Entry, connector: Connector) -> tuple[Result | None, ...]:
        """Ask the vendor what it holds for the inputs whose outcome is unknown."""
        indexes = entry.unresolved_inputs()
        call = VendorCall(
            entry.operation,
            entry.object_type,
            tuple(entry.inputs[i] for i in indexes),
            call_id=entry.call_id,
        )
        table = self._synced.get((entry.connector, entry.object_type))

        async def known(ids: Sequence[str]) -> set[str]:
            return await self._journal.known_ids(entry, ids, table)

        found = await connector.find_created(
            call, entry.created_at, unique_property=entry.lookup_property, known=known
        )
        results: list[Result | None] = (
            list(entry.results) if entry.results is not None else [UNKNOWN] * len(entry.inputs)
        )
        for index, obj in zip(indexes, found, strict=True):
            if obj is None:
                results[index] = None
            elif entry.operation is Operation.CREATE:
                results[index] = Result(obj.id, True)
            else:
                results[index] = Result(obj.id, bool(obj.created))
        log.info(
            "journal entry %d (%s %s): looked up %d inputs, %d found at the vendor",
            entry.id,
            entry.operation,
            entry.object_type,
            len(indexes),
            sum(1 for obj in found if obj is not None),
            extra=entry.log_context(),
        )
        return tuple(results)

    async def _complete(self, entry: Entry, connector: Connector) -> Outcome:
        """The transaction committed its DELETE; the archive's answer was lost: send
        the archive again (idempotent at the vendor)."""
        try:
            await connector.archive(entry.object_type, [str(i["id"]) for i in entry.inputs])
        except ApiError as error:
            return await self._failed(entry, error)
        return await self._settle_as(entry, EntryState.COMMITTED)

    async def _conflict(
        self, entry: Entry, verdict: Verdict | None, connector: Connector
    ) -> Outcome:
        """An archive whose transaction did not commit (irreversible), or an applied
        call whose verdict PostgreSQL no longer knows: report it for a human."""
        if entry.operation is not Operation.ARCHIVE:
            why = "the transaction's outcome is no longer known (too old); check by hand"
            return await self._settle_as(entry, EntryState.CONFLICT, error=why)
        try:
            ids = [str(item["id"]) for item in entry.inputs]
            gone = [i for i in ids if await connector.get(entry.object_type, i) is None]
        except ApiError as error:
            return await self._failed(entry, error)
        if not gone:  # nothing was archived: nothing to report
            return await self._settle_as(entry, EntryState.COMPENSATED)
        why = (
            f"{len(gone)} {entry.object_type} archived at the vendor ({', '.join(gone)}) but "
            f"the transaction {'did not commit' if verdict else 'outcome is unknown'}; "
            "an archive cannot be undone through the API"
        )
        return await self._settle_as(entry, EntryState.CONFLICT, error=why)

    async def _failed(
        self,
        entry: Entry,
        error: ApiError | str,
        results: Sequence[Result | None] | None = None,
    ) -> Outcome:
        retry_in = self._retry_in(entry)
        text = error if isinstance(error, str) else error_text(error)
        kind = "configuration" if isinstance(error, str) else error.kind
        log.warning(
            "journal entry %d (%s %s): compensation failed (%s); attempt %d, next in %.1fs",
            entry.id,
            entry.operation,
            entry.object_type,
            kind,
            entry.attempts + 1,
            retry_in,
        )
        if not isinstance(error, str):
            log.debug("journal entry %d: %s", entry.id, text)
        outcome = await self._settle_as(
            entry, EntryState.COMPENSATING, results=results, error=text, retry_in=retry_in
        )
        return Outcome.RETRYING if outcome is not Outcome.LOST else outcome

    def _retry_in(self, entry: Entry) -> float:
        base, cap = self._backoff
        return backoff(entry.attempts + 1, base, cap, self._jitter())

    async def _settle_as(
        self,
        entry: Entry,
        state: EntryState,
        *,
        results: Sequence[Result | None] | None = None,
        error: str | None = None,
        attempted: bool = True,
        retry_in: float = 0.0,
    ) -> Outcome:
        check_transition(entry.state, state)
        written = await self._journal.settle(
            entry,
            state,
            results=results,
            error=error,
            attempted=attempted,
            retry_in=retry_in,
            owner=self._owner,
        )
        if not written:
            log.warning("journal entry %d: lease lost before recording %s", entry.id, state)
            return Outcome.LOST
        if state is not EntryState.COMPENSATING:
            # A committed entry is the everyday case: one line per write only at DEBUG.
            level = {EntryState.CONFLICT: logging.WARNING, EntryState.COMMITTED: logging.DEBUG}
            log.log(
                level.get(state, logging.INFO),
                "journal entry %d (%s %s): %s%s",
                entry.id,
                entry.operation,
                entry.object_type,
                state,
                f": {error}" if error and state is EntryState.CONFLICT else "",
            )
        return Outcome(state.value) if state is not EntryState.COMPENSATING else Outcome.RETRYING


__all__ = ["Outcome", "Report", "Resolver"]
