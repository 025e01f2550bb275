"""How a synced table maps to a vendor object: the part of a connector the proxy asks
once, at startup, for every synced table (`Connector.map_table`).

The write layer knows no vendor: each connector applies its own naming convention
(HubSpot's `contact` ↔ `contacts`, Salesforce's `first_name` ↔ `FirstName` through the
sObject describe, Stripe's `customer` ↔ `/v1/customers`), says which columns the vendor
fills itself, which columns are unique keys an upsert may use, and what the object
cannot do (`Capabilities`) so that such a statement is refused before any call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class MappingError(ValueError):
    """The table cannot be mapped to the vendor's object (a clear startup error)."""


@dataclass(frozen=True)
class TableShape:
    """A synced table as PostgreSQL has it, with its [[synced_tables]] overrides."""

    schema: str
    name: str
    #: (column, PostgreSQL type) of every column the proxy may send or fill, in order;
    #: the id, sync and local columns and generated ones are left out.
    columns: tuple[tuple[str, str], ...]
    object: str | None = None  # the configured vendor object, else by convention
    renames: Mapping[str, str] = field(default_factory=dict)  # column -> property
    read_only: tuple[str, ...] = ()  # configured: columns the vendor sets
    upsert_keys: tuple[str, ...] | None = None  # configured ON CONFLICT targets

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


@dataclass(frozen=True)
class Capabilities:
    """What the vendor can do with an object; a statement needing more is refused
    (0A000 with the hint) before PostgreSQL or the vendor is asked anything."""

    create: bool = True
    create_hint: str | None = None
    delete: bool = True
    delete_hint: str | None = None
    #: Columns that cannot change once the object exists.
    immutable: frozenset[str] = frozenset()
    immutable_hint: str | None = None


@dataclass(frozen=True)
class ObjectMapping:
    object_type: str
    properties: Mapping[str, str]  # column -> vendor property, for columns sent to the API
    read_only: frozenset[str]  # columns the vendor sets (filled from its answers)
    upsert_keys: frozenset[str] = frozenset()  # columns usable as ON CONFLICT targets
    capabilities: Capabilities = field(default_factory=Capabilities)
    #: Association tables (HubSpot): (column, vendor object type) of each end.
    ends: tuple[tuple[str, str], tuple[str, str]] | None = None
    #: Read-only columns whose vendor property has another name (column -> property).
    read_only_properties: Mapping[str, str] = field(default_factory=dict)


def default_properties(shape: TableShape, read_only: frozenset[str]) -> dict[str, str]:
    """Every column not read-only, under its configured name or its own."""
    return {
        column: shape.renames.get(column, column)
        for column in shape.column_names
        if column not in read_only
    }


__all__ = ["Capabilities", "MappingError", "ObjectMapping", "TableShape", "default_properties"]
