"""The journal's state machine, outcome recording and decision rule (pure)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from proxy.connectors.base import ApiError, ApiObject, CallOutcome, ErrorKind, Operation, VendorCall
from proxy.journal.model import (
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    UNKNOWN,
    Action,
    Entry,
    EntryState,
    IllegalTransition,
    Result,
    Verdict,
    backoff,
    check_transition,
    decide,
    late_outcome,
    outcome_of,
    results_from_json,
    results_to_json,
)

S = EntryState
T0 = datetime(2026, 1, 1, tzinfo=UTC)
_ids = itertools.count(1)


def make_entry(
    operation: Operation = Operation.CREATE,
    state: EntryState = S.APPLIED,
    inputs: tuple[dict[str, Any], ...] | None = None,
    **fields: Any,
) -> Entry:
    """An entry as the store would return it (shared by the journal unit tests)."""
    if inputs is None:
        inputs = ({"properties": {"email": "a@x.io"}},)
    return Entry(
        id=fields.pop("id", next(_ids)),
        xid=fields.pop("xid", 1000),
        connector=fields.pop("connector", "hubspot"),
        object_type=fields.pop("object_type", "contacts"),
        operation=operation,
        inputs=inputs,
        state=state,
        created_at=fields.pop("created_at", T0),
        updated_at=fields.pop("updated_at", T0),
        call_id=fields.pop("call_id", "00000000-0000-0000-0000-000000000001"),
        **fields,
    )


# -- transitions ------------------------------------------------------------------------


def test_every_state_has_a_row_and_terminal_states_are_the_non_open_ones() -> None:
    assert set(TRANSITIONS) == set(EntryState)
    assert set(EntryState) - OPEN_STATES == TERMINAL_STATES
    assert TRANSITIONS[S.COMMITTED] == TRANSITIONS[S.FAILED] == frozenset()


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.INTENT, S.APPLIED),
        (S.INTENT, S.FAILED),
        (S.INTENT, S.UNKNOWN),
        (S.INTENT, S.COMPENSATED),
        (S.APPLIED, S.COMMITTED),
        (S.APPLIED, S.COMPENSATING),
        (S.APPLIED, S.CONFLICT),
        (S.UNKNOWN, S.COMPENSATED),
        (S.COMPENSATING, S.COMPENSATING),
        (S.COMPENSATING, S.COMPENSATED),
        (S.COMPENSATING, S.COMMITTED),
        (S.CONFLICT, S.COMPENSATING),
    ],
)
def test_legal_transitions_pass(current: EntryState, new: EntryState) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.COMMITTED, S.COMPENSATING),
        (S.COMMITTED, S.COMPENSATED),
        (S.FAILED, S.APPLIED),
        (S.APPLIED, S.INTENT),
        (S.APPLIED, S.APPLIED),
        (S.COMPENSATED, S.COMMITTED),
        (S.COMPENSATING, S.APPLIED),
    ],
)
def test_illegal_transitions_are_rejected(current: EntryState, new: EntryState) -> None:
    with pytest.raises(IllegalTransition, match=f"from {current} to {new}"):
        check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "outcome", "after"),
    [
        (S.INTENT, S.APPLIED, S.APPLIED),
        (S.INTENT, S.UNKNOWN, S.UNKNOWN),
        (S.INTENT, S.FAILED, S.FAILED),
        # resolved while the call was in flight, and the late answer says it applied
        (S.COMPENSATED, S.APPLIED, S.COMPENSATING),
        (S.CONFLICT, S.APPLIED, S.COMPENSATING),
        (S.COMPENSATED, S.UNKNOWN, S.COMPENSATED),
        (S.COMPENSATED, S.FAILED, S.COMPENSATED),
        (S.APPLIED, S.APPLIED, S.APPLIED),  # recorded twice: no change
    ],
)
def test_late_outcome(current: EntryState, outcome: EntryState, after: EntryState) -> None:
    assert late_outcome(current, outcome) is after
    if after is not current:
        check_transition(current, after)


# -- the decision rule ------------------------------------------------------------------

C, A, P = Verdict.COMMITTED, Verdict.ABORTED, Verdict.IN_PROGRESS
Op = Operation


@pytest.mark.parametrize(
    ("operation", "state", "rolled_back", "verdict", "action"),
    [
        # applied calls follow the transaction
        (Op.CREATE, S.APPLIED, False, C, Action.DONE),
        (Op.CREATE, S.APPLIED, False, A, Action.COMPENSATE),
        (Op.CREATE, S.APPLIED, False, P, Action.WAIT),
        (Op.CREATE, S.APPLIED, False, None, Action.CONFLICT),
        (Op.UPDATE, S.APPLIED, False, A, Action.COMPENSATE),
        (Op.ASSOCIATE, S.APPLIED, False, C, Action.DONE),
        (Op.DISSOCIATE, S.APPLIED, False, A, Action.COMPENSATE),
        # a rolled-back savepoint's calls are undone even if the transaction commits
        (Op.CREATE, S.APPLIED, True, C, Action.COMPENSATE),
        (Op.UPDATE, S.APPLIED, True, P, Action.COMPENSATE),
        # no answer recorded: never applied locally, so undone whatever the verdict
        (Op.CREATE, S.INTENT, False, P, Action.WAIT),
        (Op.CREATE, S.INTENT, False, C, Action.LOOKUP_THEN_COMPENSATE),
        (Op.CREATE, S.INTENT, False, A, Action.LOOKUP_THEN_COMPENSATE),
        (Op.CREATE, S.INTENT, False, None, Action.LOOKUP_THEN_COMPENSATE),
        (Op.CREATE, S.INTENT, True, P, Action.LOOKUP_THEN_COMPENSATE),
        (Op.UPSERT, S.UNKNOWN, False, C, Action.LOOKUP_THEN_COMPENSATE),
        (Op.CREATE, S.UNKNOWN, False, P, Action.LOOKUP_THEN_COMPENSATE),
        (Op.UPDATE, S.INTENT, False, A, Action.COMPENSATE),
        (Op.UPDATE, S.UNKNOWN, False, C, Action.COMPENSATE),
        (Op.ASSOCIATE, S.UNKNOWN, False, A, Action.COMPENSATE),
        # compensation due again
        (Op.CREATE, S.COMPENSATING, False, C, Action.COMPENSATE),
        # archives are irreversible: done when committed, else reported
        (Op.ARCHIVE, S.APPLIED, False, C, Action.DONE),
        (Op.ARCHIVE, S.APPLIED, False, P, Action.WAIT),
        (Op.ARCHIVE, S.APPLIED, False, A, Action.CONFLICT),
        (Op.ARCHIVE, S.APPLIED, False, None, Action.CONFLICT),
        (Op.ARCHIVE, S.APPLIED, True, C, Action.CONFLICT),
        (Op.ARCHIVE, S.INTENT, False, P, Action.WAIT),
        (Op.ARCHIVE, S.INTENT, False, A, Action.CONFLICT),
        (Op.ARCHIVE, S.UNKNOWN, False, A, Action.CONFLICT),
        (Op.ARCHIVE, S.COMPENSATING, False, A, Action.CONFLICT),
        # a committed DELETE's archive whose completion failed: sent again, never closed
        (Op.ARCHIVE, S.COMPENSATING, False, C, Action.COMPLETE),
        (Op.ARCHIVE, S.COMPENSATING, False, P, Action.WAIT),
    ],
)
def test_decide(
    operation: Operation,
    state: EntryState,
    rolled_back: bool,
    verdict: Verdict | None,
    action: Action,
) -> None:
    inputs = ({"id": "1", "properties": {"firstname": "A"}},)
    if operation in (Op.ASSOCIATE, Op.DISSOCIATE):
        inputs = ({"from": "1", "to": "2", "toObjectType": "deals"},)
    results = None if state in (S.INTENT, S.UNKNOWN) else (Result("1", True),)
    entry = make_entry(operation, state, inputs, rolled_back=rolled_back, results=results)
    assert decide(entry, verdict) is action


def test_decide_with_every_answer_known_compensates_without_lookup() -> None:
    # an upsert answered with created True/False needs no lookup
    entry = make_entry(Op.UPSERT, S.APPLIED, results=(Result("1", True),), rolled_back=False)
    assert decide(entry, A) is Action.COMPENSATE
    # ... but one whose "created" the vendor could not tell does
    ambiguous = make_entry(Op.UPSERT, S.APPLIED, results=(Result("1", None),))
    assert decide(ambiguous, A) is Action.LOOKUP_THEN_COMPENSATE
    assert decide(ambiguous, C) is Action.DONE


def test_unanswered_entries_wait_until_settled() -> None:
    entry = make_entry(Op.CREATE, S.UNKNOWN, updated_at=T0)
    settle = timedelta(seconds=2)
    assert decide(entry, A, now=T0 + timedelta(seconds=1), settle=settle) is Action.WAIT
    later = T0 + timedelta(seconds=2)
    assert decide(entry, A, now=later, settle=settle) is Action.LOOKUP_THEN_COMPENSATE
    # answered entries do not wait
    applied = make_entry(Op.CREATE, S.APPLIED, results=(Result("9", True),), updated_at=T0)
    assert decide(applied, A, now=T0, settle=settle) is Action.COMPENSATE


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_terminal_entries_are_not_decided(state: EntryState) -> None:
    with pytest.raises(ValueError, match="nothing to decide"):
        decide(make_entry(state=state), C)


# -- outcomes ---------------------------------------------------------------------------


def _obj(object_id: str, created: bool | None = None) -> ApiObject:
    return ApiObject(object_id, {}, "2026-01-01T00:00:00.000Z", "", created)


def _call(operation: Operation, n: int = 2) -> VendorCall:
    return VendorCall(operation, "contacts", tuple({"properties": {}} for _ in range(n)))


def test_outcome_of_a_create() -> None:
    state, results, error = outcome_of(
        _call(Op.CREATE), CallOutcome(results=(_obj("1"), _obj("2")))
    )
    assert state is S.APPLIED and error is None
    assert results == (Result("1", True), Result("2", True))


def test_outcome_of_upserts_and_updates_keeps_created() -> None:
    _, upserted, _ = outcome_of(
        _call(Op.UPSERT), CallOutcome(results=(_obj("1", True), _obj("2", None)))
    )
    assert upserted == (Result("1", True), Result("2", None))
    _, updated, _ = outcome_of(_call(Op.UPDATE, 1), CallOutcome(results=(_obj("1"),)))
    assert updated == (Result("1", False),)


def test_outcome_of_per_input_errors() -> None:
    rejected = ApiError(ErrorKind.DUPLICATE, "exists", http_status=409)
    lost = ApiError(ErrorKind.OUTCOME_UNKNOWN, "no result", retry_safe=False)
    state, results, error = outcome_of(_call(Op.CREATE), CallOutcome(results=(_obj("1"), rejected)))
    assert state is S.APPLIED and results == (Result("1", True), None)
    assert error is not None and error.startswith("duplicate, HTTP 409: exists")
    state, results, _ = outcome_of(_call(Op.CREATE), CallOutcome(results=(_obj("1"), lost)))
    assert state is S.UNKNOWN and results == (Result("1", True), UNKNOWN)
    state, results, _ = outcome_of(_call(Op.CREATE), CallOutcome(results=(rejected, rejected)))
    assert state is S.FAILED and results == (None, None)


def test_outcome_of_whole_call_errors() -> None:
    definite = ApiError(ErrorKind.INVALID_VALUE, "bad", http_status=400)
    state, results, error = outcome_of(_call(Op.CREATE), CallOutcome(error=definite))
    assert (state, results) == (S.FAILED, ())
    assert error == "invalid_value, HTTP 400: bad"
    maybe = ApiError(ErrorKind.OUTCOME_UNKNOWN, "timeout", retry_safe=False)
    state, results, _ = outcome_of(_call(Op.CREATE), CallOutcome(error=maybe))
    assert (state, results) == (S.UNKNOWN, (UNKNOWN, UNKNOWN))


def test_outcome_of_archives_and_associations() -> None:
    assert outcome_of(_call(Op.ARCHIVE, 1), CallOutcome()) == (S.APPLIED, (), None)


def test_results_json_round_trip() -> None:
    results = (Result("1", True), None, UNKNOWN, Result("4", None))
    raw = results_to_json(results)
    assert raw == [
        {"id": "1", "created": True},
        None,
        {"unknown": True},
        {"id": "4", "created": None},
    ]
    assert results_from_json(raw) == results
    assert results_to_json(None) is None and results_from_json(None) is None


def test_unresolved_inputs() -> None:
    two: tuple[dict[str, Any], ...] = ({"properties": {}}, {"properties": {}})
    assert make_entry(Op.CREATE, S.INTENT, two).unresolved_inputs() == [0, 1]
    partial = make_entry(Op.CREATE, S.UNKNOWN, two, results=(Result("1", True), UNKNOWN))
    assert partial.unresolved_inputs() == [1]
    upsert = make_entry(Op.UPSERT, S.APPLIED, two, results=(Result("1", None), None))
    assert upsert.unresolved_inputs() == [0]


def test_backoff_is_exponential_capped_and_jittered() -> None:
    assert [backoff(n, 1.0, 60.0, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(20, 1.0, 60.0, 1.0) == 60.0
    assert backoff(3, 1.0, 60.0, 0.0) == 2.0  # the lower half is never used
    assert all(2.0 <= backoff(3, 1.0, 60.0, j / 10) <= 4.0 for j in range(11))


def test_entry_call_rebuilds_the_vendor_call() -> None:
    entry = make_entry(Op.CREATE, S.INTENT)
    call = entry.call()
    assert (call.operation, call.object_type, call.inputs, call.call_id) == (
        Op.CREATE,
        "contacts",
        entry.inputs,
        entry.call_id,
    )


@pytest.mark.parametrize("state", [S.INTENT, S.UNKNOWN])
def test_lost_archive_answer_in_a_committed_transaction_is_completed(state: EntryState) -> None:
    """The DELETE committed locally; whether the archive landed is unknown: send it
    again (idempotent) rather than report a conflict."""
    entry = make_entry(Operation.ARCHIVE, state, inputs=({"id": "9"},))
    assert decide(entry, Verdict.COMMITTED) is Action.COMPLETE
    assert decide(entry, Verdict.ABORTED) is Action.CONFLICT
    check_transition(state, S.COMMITTED)  # allowed for archives completed


def test_a_compensation_retry_looks_up_inputs_still_unknown() -> None:
    """A lost create whose first compensation failed before its lookup was recorded:
    the retry must look up again, not undo blindly (inverse() cannot without ids)."""
    entry = make_entry(Operation.CREATE, S.COMPENSATING, results=(UNKNOWN,), rolled_back=True)
    assert decide(entry, Verdict.ABORTED) is Action.LOOKUP_THEN_COMPENSATE
    known = make_entry(Operation.CREATE, S.COMPENSATING, results=(Result("9", True),))
    assert decide(known, Verdict.ABORTED) is Action.COMPENSATE
