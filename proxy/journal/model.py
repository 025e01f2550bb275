"""The journal's data and rules, without I/O: entry states and their transitions, what
a call's outcome means for its entry, and what to do with an entry once PostgreSQL
has a verdict on the client transaction that made it.

An entry is one vendor call (``VendorCall``) made inside a client transaction:

* ``intent`` — journaled before the call was sent; the answer is not recorded (the call
  is in flight, or the proxy died, or the executor failed before recording it).
* ``applied`` — the vendor accepted (some of) the inputs; ``results`` says which.
* ``failed`` — the vendor definitely applied nothing (terminal: nothing to undo).
* ``unknown`` — the answer was lost after the request was sent (timeout, 5xx).
* ``committed`` — the client transaction committed with the call applied (terminal).
* ``compensating`` — the inverse is due (again): a compensation attempt failed and is
  retried with capped exponential backoff, never dropped.
* ``compensated`` — the inverse ran (or there was nothing to undo) (terminal).
* ``conflict`` — cannot be undone safely: the vendor value changed since, an archive
  whose transaction aborted, or the verdict can no longer be known. Reported for a
  human; ``writeproxy journal retry`` re-examines it.

The executor records an outcome before it applies anything locally, so an entry
still ``intent`` or ``unknown`` was never applied in the local tables: it is
compensated whatever the transaction's verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from proxy.connectors.base import ApiError, ApiObject, CallOutcome, Operation, VendorCall


class EntryState(StrEnum):
    INTENT = "intent"
    APPLIED = "applied"
    FAILED = "failed"
    UNKNOWN = "unknown"
    COMMITTED = "committed"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    CONFLICT = "conflict"


S = EntryState

#: Entries the resolver still has to decide.
OPEN_STATES = frozenset({S.INTENT, S.APPLIED, S.UNKNOWN, S.COMPENSATING})
TERMINAL_STATES = frozenset(EntryState) - OPEN_STATES
#: Terminal states that retention may delete (conflicts stay until a human acts).
PURGEABLE_STATES = frozenset({S.FAILED, S.COMMITTED, S.COMPENSATED})
#: What ``record_outcome`` may write for an answered (or lost) call.
OUTCOME_STATES = frozenset({S.APPLIED, S.FAILED, S.UNKNOWN})

TRANSITIONS: Mapping[EntryState, frozenset[EntryState]] = {
    # the call's answer, or the resolver deciding an entry whose answer never came
    S.INTENT: frozenset(
        {S.APPLIED, S.FAILED, S.UNKNOWN, S.COMMITTED, S.COMPENSATING, S.COMPENSATED, S.CONFLICT}
    ),
    S.APPLIED: frozenset({S.COMMITTED, S.COMPENSATING, S.COMPENSATED, S.CONFLICT}),
    S.UNKNOWN: frozenset({S.COMMITTED, S.COMPENSATING, S.COMPENSATED, S.CONFLICT}),
    # a failed compensation attempt stays due (with backoff); for an archive of a
    # committed transaction, a failed attempt to complete it (then committed once sent)
    S.COMPENSATING: frozenset({S.COMPENSATING, S.COMPENSATED, S.CONFLICT, S.COMMITTED}),
    # reopened: an operator's retry, or a late answer for an entry resolved while
    # its call was still in flight (see ``late_outcome``)
    S.COMPENSATED: frozenset({S.COMPENSATING}),
    S.CONFLICT: frozenset({S.COMPENSATING}),
    S.FAILED: frozenset(),
    S.COMMITTED: frozenset(),
}


class IllegalTransition(ValueError):
    pass


def check_transition(current: EntryState, new: EntryState) -> None:
    """Raise ``IllegalTransition`` unless the table above allows ``current -> new``."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"journal entry cannot go from {current} to {new}")


def late_outcome(current: EntryState, outcome: EntryState) -> EntryState:
    """The state after ``record_outcome`` (mirrored by the store's SQL): an ``intent``
    takes the outcome; an entry the resolver already settled while the call was in
    flight is reopened for compensation when the late answer says something was
    applied; anything else keeps its state."""
    if current is S.INTENT:
        return outcome
    if outcome is S.APPLIED and current in (S.COMPENSATED, S.CONFLICT, S.COMPENSATING):
        return S.COMPENSATING
    return current


class Verdict(StrEnum):
    """``pg_xact_status``; ``None`` stands for a transaction too old to know."""

    COMMITTED = "committed"
    ABORTED = "aborted"
    IN_PROGRESS = "in progress"


@dataclass(frozen=True)
class LaterWrite:
    """Another transaction's later journal entry that wrote an object: the properties
    it wrote (None: the whole object), whether its own statement was rolled back to a
    savepoint, and whether its entry is still open (its undo, if any, still to come)."""

    xid: int
    properties: frozenset[str] | None
    rolled_back: bool = False
    open: bool = False


class Action(StrEnum):
    WAIT = "wait"
    DONE = "done"
    COMPENSATE = "compensate"
    LOOKUP_THEN_COMPENSATE = "lookup_then_compensate"
    CONFLICT = "conflict"
    #: An archive whose answer was lost, in a transaction that committed: send it again
    #: (archiving is idempotent) so the vendor follows the committed DELETE.
    COMPLETE = "complete"


@dataclass(frozen=True)
class Result:
    """One input's outcome: the vendor object it created or touched, or ``unknown``
    when its answer was lost (``results`` holds ``None`` where nothing was applied)."""

    id: str | None = None
    created: bool | None = None
    unknown: bool = False

    def to_json(self) -> dict[str, Any]:
        if self.unknown:
            return {"unknown": True}
        return {"id": self.id, "created": self.created}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Result | None:
        if raw is None:
            return None
        if raw.get("unknown"):
            return cls(unknown=True)
        return cls(str(raw["id"]), raw.get("created"))


UNKNOWN = Result(unknown=True)
Results = tuple[Result | None, ...]


def results_to_json(results: Sequence[Result | None] | None) -> list[Any] | None:
    if results is None:
        return None
    return [None if r is None else r.to_json() for r in results]


def results_from_json(raw: Sequence[Mapping[str, Any] | None] | None) -> Results | None:
    if raw is None:
        return None
    return tuple(Result.from_json(item) for item in raw)


@dataclass(frozen=True)
class Entry:
    """One journaled vendor call, as stored."""

    id: int
    xid: int
    connector: str
    object_type: str
    operation: Operation
    inputs: tuple[Mapping[str, Any], ...]
    state: EntryState
    created_at: datetime
    updated_at: datetime
    call_id: str = ""
    database: str = ""
    #: update/upsert: ``{object id: {property: value before}}`` of the properties the
    #: call changes (an upsert's may be keyed by its input's unique value instead).
    previous: Mapping[str, Mapping[str, Any]] | None = None
    lookup_property: str | None = None
    results: Results | None = None
    rolled_back: bool = False
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None

    def call(self) -> VendorCall:
        """The journaled call, as the connector described it."""
        return VendorCall(self.operation, self.object_type, self.inputs, call_id=self.call_id)

    def log_context(self) -> dict[str, object]:
        """What a log line about this entry carries (JSON logs): never row values."""
        return {
            "entry": self.id,
            "xid": self.xid,
            "connector": self.connector,
            "operation": str(self.operation),
            "object_type": self.object_type,
        }

    def unresolved_inputs(self) -> list[int]:
        """Inputs whose vendor object must be looked up before compensating: all of
        them when no answer was recorded, else the lost ones and, for upserts, those
        the vendor could not say it created or updated. Only creates and upserts make
        objects that need finding; other operations' inputs name their objects."""
        if self.operation not in (Operation.CREATE, Operation.UPSERT):
            return []
        if self.results is None:
            return list(range(len(self.inputs)))
        return [
            i
            for i, r in enumerate(self.results)
            if r is not None
            and (r.unknown or (self.operation is Operation.UPSERT and r.created is None))
        ]


def decide(
    entry: Entry,
    verdict: Verdict | None,
    *,
    now: datetime | None = None,
    settle: timedelta = timedelta(0),
) -> Action:
    """What to do with an open entry, given its transaction's verdict.

    ``settle``: an entry whose answer is missing (``intent``/``unknown``) is looked up
    only once it is this old (by ``updated_at``), so a request the vendor is still
    processing has landed before we look for it."""
    if entry.state not in OPEN_STATES:
        raise ValueError(f"entry {entry.id} is {entry.state}: nothing to decide")
    state, operation = entry.state, entry.operation
    answered = state in (S.APPLIED, S.COMPENSATING)
    if state is S.INTENT and verdict is Verdict.IN_PROGRESS and not entry.rolled_back:
        return Action.WAIT  # the call may still be in flight
    if not answered and now is not None and now - entry.updated_at < settle:
        return Action.WAIT
    if operation is Operation.ARCHIVE:
        # Archives run at COMMIT and cannot be undone: report, never "undo". One a
        # committed transaction still owes (its answer lost, or refused and retried:
        # ``compensating`` after a failed attempt) is sent again until it lands.
        if state in (S.APPLIED, S.INTENT, S.UNKNOWN, S.COMPENSATING) and not entry.rolled_back:
            if verdict is Verdict.COMMITTED:
                return Action.DONE if state is S.APPLIED else Action.COMPLETE
            if verdict is Verdict.IN_PROGRESS:
                return Action.WAIT
        return Action.CONFLICT
    if state is S.COMPENSATING:
        # A retry: inputs whose outcome is still unknown (the lookup did not record
        # them, e.g. the vendor failed first) are looked up again.
        if entry.unresolved_inputs():
            return Action.LOOKUP_THEN_COMPENSATE
        return Action.COMPENSATE
    if not answered:  # intent or unknown: never applied locally
        if entry.unresolved_inputs():
            return Action.LOOKUP_THEN_COMPENSATE
        return Action.COMPENSATE
    # applied
    if entry.rolled_back or verdict is Verdict.ABORTED:
        if entry.unresolved_inputs():
            return Action.LOOKUP_THEN_COMPENSATE
        return Action.COMPENSATE
    if verdict is Verdict.COMMITTED:
        return Action.DONE
    if verdict is Verdict.IN_PROGRESS:
        return Action.WAIT
    return Action.CONFLICT  # too old to know whether it committed


def backoff(attempts: int, base_s: float, cap_s: float, jitter: float) -> float:
    """Seconds before the next compensation attempt: capped exponential, with
    ``jitter`` in [0, 1] choosing a point in the upper half of the window."""
    window: float = min(cap_s, base_s * 2 ** max(attempts - 1, 0))
    return window * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))


def outcome_of(call: VendorCall, outcome: CallOutcome) -> tuple[EntryState, Results, str | None]:
    """The entry state, per-input results and error text to record for an answered
    call (what the executor's ``after_send`` hook passes to ``record_outcome``)."""
    if outcome.error is not None:
        error = outcome.error
        state = S.FAILED if error.retry_safe else S.UNKNOWN
        results: Results = () if state is S.FAILED else tuple(UNKNOWN for _ in call.inputs)
        return state, results, error_text(error)
    if not outcome.results:  # archive and association calls answer nothing per input
        return S.APPLIED, (), None
    per_input: list[Result | None] = []
    errors: list[ApiError] = []
    for item in outcome.results:
        if isinstance(item, ApiObject):
            created = True if call.operation is Operation.CREATE else item.created
            if call.operation is Operation.UPDATE:
                created = False
            per_input.append(Result(item.id, created))
        else:
            errors.append(item)
            per_input.append(None if item.retry_safe else UNKNOWN)
    text = error_text(errors[0]) if errors else None
    if any(r is not None and r.unknown for r in per_input):
        return S.UNKNOWN, tuple(per_input), text
    if all(r is None for r in per_input):
        return S.FAILED, tuple(per_input), text
    return S.APPLIED, tuple(per_input), text


def error_text(error: ApiError | BaseException) -> str:
    """A short description for ``last_error`` and logs: kind, HTTP status, request id."""
    if isinstance(error, ApiError):
        parts = [str(error.kind)]
        if error.http_status is not None:
            parts.append(f"HTTP {error.http_status}")
        if error.vendor_code:
            parts.append(error.vendor_code)
        if error.vendor_request_id:
            parts.append(f"request {error.vendor_request_id}")
        return f"{', '.join(parts)}: {error.message}"[:500]
    return f"{type(error).__name__}: {error}"[:500]


__all__ = [
    "OPEN_STATES",
    "OUTCOME_STATES",
    "PURGEABLE_STATES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "UNKNOWN",
    "Action",
    "Entry",
    "EntryState",
    "IllegalTransition",
    "Result",
    "Results",
    "Verdict",
    "backoff",
    "check_transition",
    "decide",
    "error_text",
    "late_outcome",
    "outcome_of",
    "results_from_json",
    "results_to_json",
]
