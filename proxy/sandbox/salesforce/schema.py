"""Object and field definitions (what describe reports and every write is checked
against), and the catalog of object types: standard ones plus the configured custom
fields and objects. Names are case-insensitive, as in Salesforce."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .config import CustomObjectSpec, FieldSpec, FieldType

TEXT_TYPES = frozenset(
    {"id", "string", "email", "phone", "url", "textarea", "picklist", "reference"}
)
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: FieldType
    label: str
    length: int = 0
    required: bool = False
    createable: bool = True
    updateable: bool = True
    calculated: bool = False
    external_id: bool = False
    unique: bool = False
    case_sensitive: bool = False
    id_lookup: bool = False
    defaulted_on_create: bool = False
    default: object = None
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    precision: int = 0
    scale: int = 0
    digits: int = 0
    custom: bool = False

    @property
    def nillable(self) -> bool:
        return not self.required and self.type != "boolean" and self.name != "Id"

    @property
    def system(self) -> bool:
        """Set by the platform, never by a client."""
        return not (self.createable or self.updateable or self.calculated)


@dataclass
class SObjectSchema:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    custom: bool
    fields: dict[str, FieldDef] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lower = {name.lower(): f for name, f in self.fields.items()}

    def add(self, new: FieldDef) -> None:
        self.fields[new.name] = new
        self._lower[new.name.lower()] = new

    def field(self, name: str) -> FieldDef | None:
        return self._lower.get(name.lower())

    def writable(self) -> Iterable[FieldDef]:
        return (f for f in self.fields.values() if f.createable or f.updateable)


def _stamp(name: str, type_: FieldType, label: str, length: int = 0, ref: str = "") -> FieldDef:
    return FieldDef(
        name,
        type_,
        label,
        length,
        createable=False,
        updateable=False,
        defaulted_on_create=True,
        id_lookup=name == "Id",
        reference_to=(ref,) if ref else (),
    )


def system_fields() -> list[FieldDef]:
    """Every object's platform-maintained fields."""
    return [
        _stamp("Id", "id", "Record ID", 18),
        _stamp("IsDeleted", "boolean", "Deleted"),
        _stamp("CreatedDate", "datetime", "Created Date"),
        _stamp("CreatedById", "reference", "Created By ID", 18, "User"),
        _stamp("LastModifiedDate", "datetime", "Last Modified Date"),
        _stamp("LastModifiedById", "reference", "Last Modified By ID", 18, "User"),
        _stamp("SystemModstamp", "datetime", "System Modstamp"),
    ]


_DEFAULT_LENGTH = {"string": 255, "email": 80, "phone": 40, "url": 255, "textarea": 32768}


def custom_field(spec: FieldSpec, required: bool = False) -> FieldDef:
    """A configured field; lengths, precisions and labels default the way Setup does."""
    length = spec.length or _DEFAULT_LENGTH.get(spec.type, 0)
    if spec.type in ("picklist", "reference", "id"):
        length = spec.length or (18 if spec.type != "picklist" else 255)
    precision = spec.precision or (18 if spec.type in ("double", "currency", "percent") else 0)
    scale = spec.scale if spec.scale is not None else (2 if spec.type == "currency" else 0)
    return FieldDef(
        name=spec.name,
        type=spec.type,
        label=spec.label or spec.name.removesuffix("__c").replace("_", " "),
        length=length,
        required=required or spec.required,
        external_id=spec.external_id,
        unique=spec.unique,
        case_sensitive=spec.case_sensitive,
        id_lookup=spec.external_id or spec.unique,
        defaulted_on_create=spec.default_value is not None or spec.type == "boolean",
        default=spec.default_value if spec.type != "boolean" else bool(spec.default_value),
        picklist=tuple(spec.picklist_values),
        restricted=spec.restricted_picklist,
        reference_to=tuple(spec.reference_to),
        precision=precision,
        scale=scale,
        digits=9 if spec.type == "int" else 0,
        custom=True,
    )


class Catalog:
    """Every object type the org has, by name and by key prefix."""

    def __init__(self, schemas: Iterable[SObjectSchema]) -> None:
        self._by_name = {s.name.lower(): s for s in schemas}
        self._by_prefix = {s.key_prefix: s for s in self._by_name.values()}

    def get(self, name: str) -> SObjectSchema | None:
        return self._by_name.get(name.lower())

    def by_prefix(self, record_id: str) -> SObjectSchema | None:
        return self._by_prefix.get(record_id[:3])

    def all(self) -> list[SObjectSchema]:
        return sorted(self._by_name.values(), key=lambda s: s.name)


def build_catalog(
    standard: Iterable[SObjectSchema],
    custom_fields: Mapping[str, list[FieldSpec]],
    custom_objects: Mapping[str, CustomObjectSpec],
) -> Catalog:
    """Standard objects plus configuration; custom objects get prefixes a00, a01, ..."""
    schemas = {s.name.lower(): s for s in standard}
    for index, (name, spec) in enumerate(custom_objects.items()):
        label = spec.label or name.removesuffix("__c").replace("_", " ")
        schema = SObjectSchema(name, label, label + "s", f"a{index:02d}", True)
        for system in system_fields():
            schema.add(system)
        schema.add(FieldDef("Name", "string", f"{label} Name", 80, required=True, id_lookup=True))
        required = {r.lower() for r in spec.required}
        for item in spec.fields:
            schema.add(custom_field(item, item.name.lower() in required))
        schemas[name.lower()] = schema
    for type_name, specs in custom_fields.items():
        target = schemas.get(type_name.lower())
        if target is None:
            raise ValueError(f"custom_fields names an unknown object type: {type_name}")
        for item in specs:
            target.add(custom_field(item))
    return Catalog(schemas.values())
