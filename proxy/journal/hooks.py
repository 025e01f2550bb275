"""``CallHooks`` that journal a statement's vendor calls: the intent before each call
is sent, its outcome after. The executor passes one ``JournalHooks`` per synced
statement to the connector and hands ``entry_ids`` to the session's ledger.

Calls a connector makes to undo its own failing multi-row call (``compensation``) are
not journaled: the forward calls' entries already say what was applied, and their
inverses (archive, compare-first restore, association) are safe to run again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.connectors.base import CallOutcome, Operation, VendorCall

from .model import EntryState
from .store import Journal

Previous = Mapping[str, Mapping[str, Any]]


def previous_for(call: VendorCall, previous: Previous | None) -> dict[str, dict[str, Any]] | None:
    """The old values a call's inverse needs: for each input of an update (by object
    id) or upsert (by object id or unique value), the previous values of exactly the
    properties the input sends. ``previous`` may cover the whole statement."""
    if previous is None or call.operation not in (Operation.UPDATE, Operation.UPSERT):
        return None
    chosen: dict[str, dict[str, Any]] = {}
    for item in call.inputs:
        key = str(item.get("id"))
        before = previous.get(key)
        sent = item.get("properties")
        if before is None or not isinstance(sent, Mapping):
            continue
        chosen[key] = {name: before.get(name) for name in sent if name in before}
    return chosen


class JournalHooks:
    def __init__(
        self,
        journal: Journal,
        *,
        xid: int,
        connector: str,
        previous: Previous | None = None,
        lookup_property: str | None = None,
    ) -> None:
        self._journal = journal
        self._xid = xid
        self._connector = connector
        self._previous = previous
        self._lookup_property = lookup_property
        self._open: dict[str, int] = {}
        #: Entries journaled so far, in call order.
        self.entry_ids: list[int] = []
        #: Outcomes recorded, by entry id (``compensating`` when a late answer
        #: reopened an entry the resolver had already settled).
        self.states: dict[int, EntryState] = {}

    async def before_send(self, call: VendorCall) -> None:
        if call.compensation:
            return
        entry_id = await self._journal.record_intent(
            call,
            xid=self._xid,
            connector=self._connector,
            previous=previous_for(call, self._previous),
            lookup_property=self._lookup_property,
        )
        self._open[call.call_id] = entry_id
        self.entry_ids.append(entry_id)

    async def after_send(self, call: VendorCall, outcome: CallOutcome) -> None:
        entry_id = self._open.pop(call.call_id, None)
        if entry_id is not None:
            self.states[entry_id] = await self._journal.record_call_outcome(entry_id, call, outcome)

    @property
    def unanswered(self) -> list[int]:
        """Entries whose outcome was never recorded (the call raised out of the
        connector, e.g. cancelled): record them ``unknown`` in the exception path."""
        return list(self._open.values())


__all__ = ["JournalHooks", "previous_for"]
