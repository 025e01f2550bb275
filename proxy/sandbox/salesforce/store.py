"""In-memory org data: every record of every type, live or in the recycle bin, keyed by
its 18-character id. Callers hold `lock` across a whole API call, which makes each call
atomic (sObject Collections included)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .ids import USER_ID, IdMint
from .schema import Catalog, FieldDef, SObjectSchema
from .values import sf_datetime


def now() -> datetime:
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Record:
    """One record; replaced, never mutated, so an undo log can keep old versions."""

    id: str
    type: str
    values: Mapping[str, object] = field(default_factory=dict)
    created: datetime = field(default_factory=now)
    modified: datetime = field(default_factory=now)
    deleted: bool = False

    def get(self, item: FieldDef) -> object:
        """A field's value, platform-maintained and calculated fields included."""
        match item.name:
            case "Id":
                return self.id
            case "IsDeleted":
                return self.deleted
            case "CreatedDate":
                return sf_datetime(self.created)
            case "LastModifiedDate" | "SystemModstamp":
                return sf_datetime(self.modified)
            case "CreatedById" | "LastModifiedById":
                return USER_ID
        if item.calculated and item.name == "Name":
            parts = [self.values.get("FirstName"), self.values.get("LastName")]
            return " ".join(str(p) for p in parts if p) or None
        return self.values.get(item.name)


def render(
    record: Record,
    schema: SObjectSchema,
    version: str,
    fields: Sequence[FieldDef] | None = None,
    *,
    with_id: bool = True,
) -> dict[str, object]:
    """The REST form: `attributes`, then the requested fields (all when None)."""
    body: dict[str, object] = {
        "attributes": {
            "type": schema.name,
            "url": f"/services/data/v{version}/sobjects/{schema.name}/{record.id}",
        }
    }
    chosen = list(schema.fields.values()) if fields is None else list(fields)
    if with_id and all(f.name != "Id" for f in chosen):
        body["Id"] = record.id
    for item in chosen:
        body[item.name] = record.get(item)
    return body


class Store:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.lock = threading.RLock()
        self._mint = IdMint()
        self._records: dict[str, Record] = {}

    def reset(self) -> None:
        with self.lock:
            self._records = {}

    def new_id(self, schema: SObjectSchema) -> str:
        return self._mint.new(schema.key_prefix)

    def get(self, record_id: str) -> Record | None:
        return self._records.get(record_id)

    def put(self, record: Record) -> None:
        self._records[record.id] = record

    def drop(self, record_id: str) -> None:
        self._records.pop(record_id, None)

    def records(self, type_name: str, *, deleted: bool | None = False) -> list[Record]:
        """Records of a type in creation order: live (False), recycled (True) or both."""
        with self.lock:
            return [
                r
                for r in self._records.values()
                if r.type == type_name and (deleted is None or r.deleted == deleted)
            ]

    def schema_of(self, record: Record) -> SObjectSchema:
        found = self.catalog.get(record.type)
        assert found is not None
        return found
