"""The vendor API changes of one session's current transaction, by savepoint.

Each synced write journals its vendor calls durably (``proxy.journal``); the ledger
only remembers, for the live path, *which* journal entries belong to the client's
current transaction and under which savepoints they were made, and which archives
wait for the COMMIT. What happens to the entries is decided by PostgreSQL's verdict on
the transaction (``pg_xact_status``), never by the ledger: the ledger tells the
resolver *when* to ask (the transaction ended; a savepoint was rolled back).

Savepoints are tracked only while the ledger is active (it holds an entry or a
deferred archive): a savepoint the ledger never saw was established before every
entry, so ``ROLLBACK TO`` it undoes them all. Names follow PostgreSQL: the most
recent savepoint of a name wins, ``RELEASE`` also releases the ones after it, and
``ROLLBACK TO`` keeps the savepoint itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proxy.writes.tables import SyncedTable


@dataclass(frozen=True, slots=True)
class DeferredArchive:
    """Objects a DELETE removed locally; archived at the vendor at COMMIT (an archive
    cannot be undone through the vendor API, so it waits for the transaction to be
    about to commit)."""

    connector: str
    object_type: str
    table: SyncedTable  # for the errors a failed archive maps to
    ids: tuple[str, ...]
    #: The deleted rows' unique vendor key (a contact's email), casefolded: until the
    #: archive, the vendor still holds them, so this transaction cannot reuse them.
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Savepoint:
    name: str


@dataclass(frozen=True, slots=True)
class _Entries:
    ids: tuple[int, ...]


_Event = _Savepoint | _Entries | DeferredArchive


@dataclass
class TxLedger:
    """One per session; reset whenever the client's transaction ends."""

    #: The client transaction's id (xid8), once a synced write asked for it.
    xid: int | None = None
    #: The proxy opened the current block for the client's implicit transaction (a
    #: pipeline of synced writes) and ends it at the client's Sync.
    proxy_block: bool = False
    #: A statement ran since the last ReadyForQuery (it may have begun a block).
    dirty: bool = False
    #: Deferred archives were sent and the COMMIT is on its way: the proxy finishes it
    #: even if the client goes away meanwhile (the vendor change is already made).
    committing: bool = False
    #: The client executed its own BEGIN since the last ReadyForQuery (extended
    #: protocol): the upstream is in the client's explicit block already.
    client_began: bool = False
    #: A CancelRequest for the session arrived while a synced statement ran (the
    #: executor checks it once the vendor has answered).
    cancel_requested: bool = False
    #: SERIALIZABLE: the archives of the COMMIT on its way, with its xid and their
    #: journal entries, sent only once it succeeded (its serializability check could
    #: fail it after an archive). Kept across ``end`` (the COMMIT's ReadyForQuery ends
    #: the ledger first).
    after_commit: tuple[int, list[tuple[DeferredArchive, int]]] | None = None
    _events: list[_Event] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """The transaction has made (or deferred) vendor changes."""
        return any(not isinstance(event, _Savepoint) for event in self._events)

    @property
    def entry_ids(self) -> list[int]:
        return [i for event in self._events if isinstance(event, _Entries) for i in event.ids]

    @property
    def deferred(self) -> list[DeferredArchive]:
        return [event for event in self._events if isinstance(event, DeferredArchive)]

    def record(self, entry_ids: Iterable[int]) -> None:
        ids = tuple(entry_ids)
        if ids:
            self._events.append(_Entries(ids))

    def defer(self, archive: DeferredArchive) -> None:
        if archive.ids:
            self._events.append(archive)

    def archived(self) -> None:
        """The deferred archives were sent (just before the COMMIT)."""
        self._events = [e for e in self._events if not isinstance(e, DeferredArchive)]

    def savepoint(self, name: str) -> None:
        if self.active:
            self._events.append(_Savepoint(name))

    def release(self, name: str) -> None:
        """RELEASE: the savepoint and every later one merge into their parent."""
        at = self._find(name)
        self._events = [
            event
            for i, event in enumerate(self._events)
            if i < at or not isinstance(event, _Savepoint)
        ]

    def rollback_to(self, name: str) -> list[int]:
        """ROLLBACK TO succeeded: drop what was done after the savepoint; returns the
        journal entries to compensate. The savepoint itself remains."""
        at = self._find(name)
        keep = at + 1 if at >= 0 else 0
        undone = self._events[keep:]
        self._events = self._events[:keep]
        return [i for event in undone if isinstance(event, _Entries) for i in event.ids]

    def knows(self, name: str) -> bool:
        """Whether the ledger saw savepoint ``name`` being made (and it still exists)."""
        return self._find(name) >= 0

    def discard(self) -> list[int]:
        """The whole transaction is about to be rolled back: hand over its entries and
        drop its deferred archives (its xid stays until the transaction ends)."""
        undone = self.entry_ids
        self._events = []
        return undone

    def end(self) -> tuple[int | None, list[int]]:
        """The transaction ended (committed or not): hand over its xid and entries.
        Deferred archives that never ran are simply dropped: the transaction did not
        commit, so its DELETEs never reach the vendor."""
        result = (self.xid, self.entry_ids)
        self.xid = None
        self.proxy_block = False
        self._events = []
        return result

    def _find(self, name: str) -> int:
        """Index of the most recent savepoint ``name``; -1: before every event."""
        for i in range(len(self._events) - 1, -1, -1):
            event = self._events[i]
            if isinstance(event, _Savepoint) and event.name == name:
                return i
        return -1
