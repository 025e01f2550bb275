"""How to undo a journaled call, as data (no I/O): the vendor calls that compensate it.

* create  -> archive the created objects.
* upsert  -> archive the objects it created; restore the others' changed properties.
* update  -> restore exactly the properties it changed, to their previous values, and
  only where the vendor still holds what the call sent (the resolver compares first:
  a value someone else changed since is left alone and reported as a conflict).
* associate <-> dissociate the same pairs.
* archive -> nothing: the vendor cannot undo it (archives are deferred to COMMIT).

An object whose previous values the journal does not hold (an upsert that updated an
object the vendor already had) cannot be restored: it is named as ``Unrestorable``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from proxy.connectors.base import Operation

from .model import Entry


@dataclass(frozen=True)
class ArchiveObjects:
    object_type: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class RestoreProperties:
    """Put ``previous`` back on one object, property by property, where the vendor
    still holds ``expected`` (what the forward call set)."""

    object_type: str
    object_id: str
    previous: Mapping[str, Any]
    expected: Mapping[str, Any]


@dataclass(frozen=True)
class Relink:
    """Associate (or with ``remove``, dissociate) pairs of objects."""

    from_type: str
    to_type: str
    pairs: tuple[tuple[str, str], ...]
    remove: bool


@dataclass(frozen=True)
class Unrestorable:
    object_type: str
    object_ids: tuple[str, ...]
    reason: str


InverseCall = ArchiveObjects | RestoreProperties | Relink | Unrestorable


def object_ids(calls: Sequence[InverseCall]) -> set[str]:
    """The objects these undo calls would change."""
    ids: set[str] = set()
    for call in calls:
        if isinstance(call, ArchiveObjects):
            ids.update(call.ids)
        elif isinstance(call, RestoreProperties):
            ids.add(call.object_id)
    return ids


def without_written(
    calls: Sequence[InverseCall], written: Mapping[str, frozenset[str] | None]
) -> list[InverseCall]:
    """The undo calls minus what would overwrite a later committed write: the
    properties it wrote (``written`` by object id; None: the whole object)."""
    if not written:
        return list(calls)
    kept: list[InverseCall] = []
    for call in calls:
        if isinstance(call, ArchiveObjects):
            ids = tuple(i for i in call.ids if i not in written)
            if ids:
                kept.append(ArchiveObjects(call.object_type, ids))
        elif isinstance(call, RestoreProperties):
            if call.object_id not in written:
                kept.append(call)
                continue
            taken = written[call.object_id]
            if taken is None:
                continue
            left = {k: v for k, v in call.previous.items() if k not in taken}
            if left:
                kept.append(
                    RestoreProperties(
                        call.object_type,
                        call.object_id,
                        left,
                        {k: v for k, v in call.expected.items() if k in left},
                    )
                )
        else:
            kept.append(call)
    return kept


class NeedsLookup(ValueError):
    """Some inputs' outcomes are unknown: look them up (``find_created``) first."""


def inverse(entry: Entry) -> list[InverseCall]:
    """The calls that undo ``entry``, in order; empty when nothing needs undoing."""
    match entry.operation:
        case Operation.CREATE | Operation.UPSERT:
            return _undo_writes(entry)
        case Operation.UPDATE:
            return _undo_update(entry)
        case Operation.ASSOCIATE | Operation.DISSOCIATE:
            return _relink(entry)
        case _:
            return []  # archive: irreversible


def _undo_writes(entry: Entry) -> list[InverseCall]:
    if entry.unresolved_inputs():
        raise NeedsLookup(f"entry {entry.id}: outcome of inputs {entry.unresolved_inputs()}")
    assert entry.results is not None
    archive: list[str] = []
    calls: list[InverseCall] = []
    missing: list[str] = []
    previous = entry.previous or {}
    for item, result in zip(entry.inputs, entry.results, strict=True):
        if result is None or result.id is None:
            continue
        if entry.operation is Operation.CREATE or result.created:
            archive.append(result.id)
            continue
        before = previous.get(result.id) or previous.get(str(item.get("id")))
        restore = _restore(entry.object_type, result.id, before, item)
        if restore is None:
            missing.append(result.id)
        else:
            calls.append(restore)
    head: list[InverseCall] = [ArchiveObjects(entry.object_type, tuple(archive))] if archive else []
    return head + calls + _unrestorable(entry.object_type, missing)


def _undo_update(entry: Entry) -> list[InverseCall]:
    results = entry.results or ()
    calls: list[InverseCall] = []
    missing: list[str] = []
    previous = entry.previous or {}
    for i, item in enumerate(entry.inputs):
        if i < len(results) and results[i] is None:
            continue  # the vendor rejected this input: nothing was changed
        object_id = str(item["id"])
        restore = _restore(entry.object_type, object_id, previous.get(object_id), item)
        if restore is None:
            missing.append(object_id)
        elif restore.previous:
            calls.append(restore)
    return calls + _unrestorable(entry.object_type, missing)


def _restore(
    object_type: str,
    object_id: str,
    before: Mapping[str, Any] | None,
    item: Mapping[str, Any],
) -> RestoreProperties | None:
    """Restore the properties the input sent, from ``before`` (None: not known)."""
    if before is None:
        return None
    sent = item.get("properties")
    sent = sent if isinstance(sent, Mapping) else {}
    changed = [name for name in before if name in sent]
    return RestoreProperties(
        object_type,
        object_id,
        {name: before[name] for name in changed},
        {name: sent[name] for name in changed},
    )


def _unrestorable(object_type: str, ids: list[str]) -> list[InverseCall]:
    if not ids:
        return []
    return [Unrestorable(object_type, tuple(ids), "previous values were not journaled")]


def _relink(entry: Entry) -> list[InverseCall]:
    by_target: dict[str, list[tuple[str, str]]] = {}
    for item in entry.inputs:
        pair = (str(item["from"]), str(item["to"]))
        by_target.setdefault(str(item["toObjectType"]), []).append(pair)
    remove = entry.operation is Operation.ASSOCIATE
    return [
        Relink(entry.object_type, to_type, tuple(pairs), remove)
        for to_type, pairs in by_target.items()
    ]


# -- comparing what the vendor holds with what was sent or held before -------------


def values_equal(held: object, wanted: object) -> bool:
    """Whether the vendor's value ``held`` is exactly ``wanted`` (empty == missing)."""
    return _text(held) == _text(wanted)


def values_match(held: object, wanted: object) -> bool:
    """Whether the vendor's value ``held`` is ``wanted``, allowing for the vendor's
    normalisation: empty == missing, case (e-mail addresses, booleans), number
    formatting ("2.0" == "2"), and instants written in different zones or precision."""
    a, b = _text(held), _text(wanted)
    if a == b:
        return True
    if a is None or b is None:
        return False
    if a.strip().casefold() == b.strip().casefold():
        return True
    number_a, number_b = _number(a), _number(b)
    if number_a is not None and number_b is not None:
        return number_a == number_b
    moment_a, moment_b = _moment(a), _moment(b)
    return moment_a is not None and moment_a == moment_b


def _text(value: object) -> str | None:
    if value is None or value == "" or value == {}:
        return None  # Stripe: metadata {} is no metadata, as "" is no value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):  # a JSON object: by content, whatever its key order
        return json.dumps(_canonical(value), sort_keys=True)
    if isinstance(value, list | tuple):
        return ";".join(str(_text(v) or "") for v in value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _canonical(value: object) -> object:
    """A JSON value with numbers by value (1.50 == 1.5) and objects by content."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = Decimal(str(value))
        return str(number.normalize()) if number.is_finite() else str(number)
    return value


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


__all__ = [
    "ArchiveObjects",
    "InverseCall",
    "NeedsLookup",
    "Relink",
    "RestoreProperties",
    "Unrestorable",
    "inverse",
    "values_equal",
    "values_match",
]
