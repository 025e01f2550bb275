"""HubSpot's side of the table mapping (Sequin's layout): `contact` ↔ `contacts`,
property columns under their own names, HubSpot's timestamps filled by HubSpot,
`email` as the contacts' upsert key, and `associations_<a>_<b>` tables."""

from __future__ import annotations

from ..mapping import MappingError, ObjectMapping, TableShape, default_properties

#: Sequin's table names for HubSpot's standard objects.
OBJECTS = {"contact": "contacts", "company": "companies", "deal": "deals"}
#: Properties HubSpot sets itself.
READ_ONLY = (
    "createdate",
    "lastmodifieddate",
    "hs_createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
)
#: Properties HubSpot can upsert by (unique per object type).
UPSERT_KEYS = {"contacts": ("email",)}
ASSOCIATION_PREFIX = "associations_"


def map_table(shape: TableShape) -> ObjectMapping:
    if shape.name.startswith(ASSOCIATION_PREFIX) and shape.object is None:
        ends = association_ends(shape, frozenset(shape.column_names))
        return ObjectMapping(ends[0][1], {}, frozenset(), ends=ends)
    object_type = shape.object or OBJECTS.get(shape.name, shape.name)
    names = set(shape.column_names)
    read_only = frozenset(shape.read_only) | {c for c in READ_ONLY if c in names}
    properties = default_properties(shape, read_only)
    upsert_keys = shape.upsert_keys
    if upsert_keys is None:
        vendor_keys = UPSERT_KEYS.get(object_type, ())
        upsert_keys = tuple(c for c, p in properties.items() if p in vendor_keys)
    return ObjectMapping(object_type, properties, read_only, frozenset(upsert_keys))


def association_ends(
    shape: TableShape, columns: frozenset[str]
) -> tuple[tuple[str, str], tuple[str, str]]:
    """``associations_<a>_<b>`` with columns ``<a>_id`` and ``<b>_id`` (Sequin's layout);
    object names may themselves contain underscores, so every split is tried."""
    words = shape.name.removeprefix(ASSOCIATION_PREFIX).split("_")
    for cut in range(1, len(words)):
        first, second = "_".join(words[:cut]), "_".join(words[cut:])
        if f"{first}_id" in columns and f"{second}_id" in columns:
            return (
                (f"{first}_id", OBJECTS.get(first, first)),
                (f"{second}_id", OBJECTS.get(second, second)),
            )
    raise MappingError(
        f"association table {shape.display} needs the columns <a>_id and <b>_id of its "
        "name's two objects"
    )
