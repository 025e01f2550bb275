"""Finding what a create or upsert made when its answer was lost (a connector's
``find_created``, used by journal recovery), for any vendor.

Apart from ``connector`` because it is matching logic, not API plumbing: which unique
property an input can be read by, which recently created object holds what an input
sent. The connector supplies the reads (its ``get`` and a listing of recent objects).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from .base import ApiObject, Connector, Operation, VendorCall

#: Allowed skew between the journal's clock (PostgreSQL's) and the vendor's when looking
#: for objects a lost create made (they must also hold everything the input sent).
#: An upsert's object counts as created only if created after the call was journaled:
#: with skew, erring towards "updated" leaves an object rather than archiving one
#: that existed before.
CLOCK_MARGIN = timedelta(seconds=30)
#: Live objects of a type created at/after a time, with these properties.
ListCreated = Callable[[str, datetime, Sequence[str]], Awaitable[list[ApiObject]]]
#: Of these object ids, those known not to be the call's: held by the synced table, or
#: recorded as created by another journal entry (given by the journal's resolver).
KnownIds = Callable[[Sequence[str]], Awaitable[set[str]]]


async def _no_known(ids: Sequence[str]) -> set[str]:
    return set()


async def find_created(
    call: VendorCall,
    since: datetime,
    unique_property: str | None,
    *,
    connector: Connector,
    list_created: ListCreated,
    unique_properties: Mapping[str, str] | None = None,
    known: KnownIds | None = None,
) -> list[ApiObject | None]:
    """What the vendor holds for each input of a create/upsert whose answer was lost.

    An input with a unique value (an upsert's idProperty, ``unique_property``, or the
    vendor's own unique property of the type in ``unique_properties``, e.g. HubSpot's
    contact email) is read by it: a create's object counts only if it was
    created since the call (an older one made the create fail as a duplicate).
    Other inputs are matched against the objects created since the call, listed
    page by page: an object whose properties equal everything the input sent,
    each object matched at most once — never one ``known`` to be another's, and
    those created after the call before those only within the clock margin (newest
    first there: an older look-alike is more likely someone else's). Only reads."""
    start = since - CLOCK_MARGIN
    known = known or _no_known
    found: list[ApiObject | None] = [None] * len(call.inputs)
    unmatched: list[int] = []
    for index, item in enumerate(call.inputs):
        sent = _sent(item)
        key_property, key = _lookup_key(
            call, item, sent, unique_property or (unique_properties or {}).get(call.object_type)
        )
        if key_property is None or not key:
            unmatched.append(index)
            continue
        obj = await connector.get(
            call.object_type, key, id_property=key_property, properties=list(sent)
        )
        if obj is None:
            continue
        if call.operation is Operation.UPSERT:
            found[index] = replace(obj, created=_created_since(obj, since))
        elif obj.id in await known([obj.id]):
            continue  # another's (the create failed as its duplicate)
        elif _created_since(obj, since) or (_created_since(obj, start) and _holds(obj, sent)):
            # By its unique value and made after the call: ours, even if the vendor
            # normalised what it holds (a currency rounded to its scale).
            found[index] = obj
    if unmatched:
        wanted = sorted({name for i in unmatched for name in _sent(call.inputs[i])})
        listed = await list_created(call.object_type, start, wanted)
        others = await known([o.id for o in listed])
        fresh = [o for o in listed if o.id not in others and _created_since(o, since)]
        margin = [o for o in listed if o.id not in others and not _created_since(o, since)]
        candidates = fresh + margin[::-1]
        taken: set[str] = set()
        for index in unmatched:
            sent = _sent(call.inputs[index])
            match = next((o for o in candidates if o.id not in taken and _holds(o, sent)), None)
            if match is not None:
                taken.add(match.id)
                found[index] = match
    return found


def _sent(item: Mapping[str, object]) -> dict[str, str]:
    properties = item.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    return {str(name): str(value) for name, value in properties.items()}


def _lookup_key(
    call: VendorCall, item: Mapping[str, object], sent: Mapping[str, str], unique: str | None
) -> tuple[str | None, str | None]:
    """The unique property and value an input's object can be read by, if any."""
    if call.operation is Operation.UPSERT:
        return str(item.get("idProperty") or "") or None, str(item.get("id") or "") or None
    name = unique
    return name, (sent.get(name) if name else None)


def _created_since(obj: ApiObject, start: datetime) -> bool:
    try:
        created = datetime.fromisoformat(obj.created_at.replace("Z", "+00:00"))
    except ValueError:
        return False  # unknown age: never claim it as ours
    return created.tzinfo is not None and created >= start


def _holds(obj: ApiObject, sent: Mapping[str, str]) -> bool:
    """The object holds every value the input sent, as the vendor normalises them."""
    return all(_same(_text(obj.properties.get(name)), value) for name, value in sent.items())


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _same(held: str | None, sent: str) -> bool:
    if (held or "") == sent or (held or "").casefold() == sent.casefold():
        return True
    try:
        return held is not None and Decimal(held) == Decimal(sent)
    except InvalidOperation:
        return False
