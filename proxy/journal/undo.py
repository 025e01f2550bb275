"""Running one entry's undo at the vendor: the inverse calls ``Resolver`` sends.

Apart from ``resolver`` so the decision logic (claims, verdicts, settling) and the
vendor-facing mechanics of an undo (archive, relink, compare-then-restore) can be
read and changed separately.
"""

from __future__ import annotations

from proxy.connectors.base import ApiError, Connector, ErrorKind

from .inverse import (
    ArchiveObjects,
    InverseCall,
    Relink,
    RestoreProperties,
    Unrestorable,
    values_equal,
    values_match,
)


async def _run(call: InverseCall, connector: Connector) -> str | None:
    """Run one inverse call; returns a conflict description (no values) or None."""
    match call:
        case ArchiveObjects(object_type, ids):
            await connector.archive(object_type, ids)
        case Relink(from_type, to_type, pairs, remove):
            gone = []
            for pair in pairs:  # one by one: a failed pair must not undo the others
                try:
                    await connector.associate(from_type, to_type, [pair], remove=remove)
                except ApiError as error:
                    if error.kind is not ErrorKind.NOT_FOUND:
                        raise
                    if not remove:  # an end was archived since: cannot re-associate
                        gone.append("-".join(pair))
            if gone:
                return f"{from_type}-{to_type} associations {', '.join(gone)}: object gone"
        case RestoreProperties():
            return await _restore(call, connector)
        case Unrestorable(object_type, ids, reason):
            # Objects archived since (e.g. by the DELETE whose archive made an upsert
            # that adopted them fail) have nothing left to restore.
            live = [i for i in ids if await connector.get(object_type, i) is not None]
            if live:
                return f"{object_type} {', '.join(live)}: not restored, {reason}"
    return None


async def _restore(call: RestoreProperties, connector: Connector) -> str | None:
    """Compare first: restore a property only where the vendor still holds what the
    forward call sent; one someone else changed since is left and reported."""
    current = await connector.get(call.object_type, call.object_id, properties=list(call.previous))
    if current is None:
        return f"{call.object_type} {call.object_id}: archived since, not restored"
    put: dict[str, object] = {}
    changed: list[str] = []
    for name, before in call.previous.items():
        held = current.properties.get(name)
        if values_equal(held, before):
            continue  # never changed, or already restored
        if values_match(held, call.expected.get(name)):
            # Still what the call set (also when that differs from the old value only
            # in case or format: "acme" -> "ACME" must be undone too).
            put[name] = before
        elif values_match(held, before):
            continue  # already restored, in the vendor's own format
        else:
            changed.append(name)
    if put:
        await connector.update(call.object_type, [(call.object_id, put)])
    if changed:
        return (
            f"{call.object_type} {call.object_id}: {', '.join(sorted(changed))} changed "
            "at the vendor since; left as they are"
        )
    return None
