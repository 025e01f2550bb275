"""Stripe's side of the table mapping: the table names the object (``customer`` ↔
``/v1/customers``), columns are the object's top-level fields of the same name,
fields Stripe sets are read-only, fields it accepts only at creation are immutable."""

from __future__ import annotations

from ..mapping import Capabilities, MappingError, ObjectMapping, TableShape
from .objects import BY_RESOURCE, OBJECTS, StripeObject


def stripe_object(resource: str) -> StripeObject:
    return BY_RESOURCE[resource]


def map_table(shape: TableShape) -> ObjectMapping:
    wanted = shape.object or shape.name
    spec = OBJECTS.get(wanted) or BY_RESOURCE.get(wanted)
    if spec is None:
        raise MappingError(
            f"synced table {shape.display}: Stripe objects that can be written are "
            f"{', '.join(sorted(OBJECTS))} (set object in its [[synced_tables]] entry)"
        )
    properties: dict[str, str] = {}
    read_only = set(shape.read_only)
    for column in shape.column_names:
        field = shape.renames.get(column, column)
        if field not in spec.fields:
            raise MappingError(
                f"synced table {shape.display}: column {column} is not a field of Stripe's "
                f"{spec.table} object (rename it in [[synced_tables]] columns, or list it "
                "in local_columns)"
            )
        if column in read_only or field in spec.read_only:
            read_only.add(column)
        else:
            properties[column] = field
    immutable = {c for c, f in properties.items() if f not in spec.updatable}
    if shape.upsert_keys:
        raise MappingError(f"synced table {shape.display}: Stripe has no upsert by a field")
    return ObjectMapping(
        spec.resource,
        properties,
        frozenset(read_only),
        frozenset(),
        Capabilities(
            delete=spec.delete_hint is None,
            delete_hint=spec.delete_hint,
            immutable=frozenset(immutable),
            immutable_hint=f"Stripe does not let a {spec.table}'s field change once it "
            "exists; create a new one instead.",
        ),
        read_only_properties={c: shape.renames.get(c, c) for c in read_only},
    )
