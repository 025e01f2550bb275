"""A stored CRM object and its JSON rendering (`SimplePublicObject`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .schema import TypeSchema
from .validation import iso_ms


@dataclass
class CrmObject:
    id: str
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None

    def values(self, schema: TypeSchema) -> dict[str, str]:
        """Stored values plus the system properties HubSpot computes."""
        return self.properties | {
            "hs_object_id": self.id,
            schema.info.created_property: iso_ms(self.created_at),
            schema.info.modified_property: iso_ms(self.updated_at),
        }


def render(
    obj: CrmObject,
    schema: TypeSchema,
    requested: Sequence[str] | None = None,
    *,
    everything: bool = False,
    new: bool | None = None,
    trace_id: str | None = None,
) -> dict[str, object]:
    """`everything` (write responses, sandbox introspection) returns every set value;
    reads return the named properties, or the type's defaults, with null for unset ones."""
    values = obj.values(schema)
    properties: dict[str, str | None]
    if everything:
        properties = {k: v for k, v in values.items() if v != ""}
    else:
        wanted = requested if requested else schema.info.default_properties
        names = list(schema.properties) if wanted is None else list(wanted)
        names += [n for n in schema.info.system_properties if n not in names]
        properties = {n: values.get(n) or None for n in names if n in schema.properties}
    body: dict[str, object] = {
        "id": obj.id,
        "properties": dict(sorted(properties.items())),
        "createdAt": iso_ms(obj.created_at),
        "updatedAt": iso_ms(obj.updated_at),
        "archived": obj.archived_at is not None,
    }
    if obj.archived_at is not None:
        body["archivedAt"] = iso_ms(obj.archived_at)
    if new is not None:
        body["new"] = new
    if trace_id is not None:
        body["objectWriteTraceId"] = trace_id
    return body
