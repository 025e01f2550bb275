"""In-memory CRM state: schemas, objects, associations. Thread-safe; every write
validates a whole batch before applying any of it, so rejected batches change nothing."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from . import errors
from .config import ObjectTypeSpec
from .errors import HubSpotError
from .model import CrmObject
from .schema import (
    SEED_PROPERTIES,
    STANDARD_TYPES,
    PropertyDef,
    TypeSchema,
    canonical_type,
    custom_type_info,
    system_properties,
)
from .validation import check_value, validate_properties

MAX_BATCH = 100

# HUBSPOT_DEFINED default (unlabelled) association type ids, per direction.
_DEFAULT_ASSOCIATION_TYPES = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
}


class Edge(NamedTuple):
    from_type: str
    from_id: str
    to_type: str
    to_id: str
    type_id: int


@dataclass(frozen=True)
class WriteInput:
    """One batch input: the object to touch (by id or idProperty) and its properties."""

    properties: object = None
    id: str | None = None
    id_property: str | None = None
    trace_id: str | None = None


@dataclass
class Written:
    obj: CrmObject
    trace_id: str | None = None
    new: bool | None = None


@dataclass
class BatchResult:
    written: list[Written] = field(default_factory=list)
    errors: list[tuple[HubSpotError, str | None]] = field(default_factory=list)


Apply = Callable[[], Written]
_Claims = dict[tuple[str, str], str]


def _now() -> datetime:
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class Store:
    def __init__(self, portal_id: int, object_types: Mapping[str, ObjectTypeSpec]) -> None:
        self.portal_id = portal_id
        self._startup_types = dict(object_types)
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._schemas: dict[str, TypeSchema] = {}
            self._objects: dict[str, dict[str, CrmObject]] = {}
            self._edges: set[Edge] = set()
            self._ids = itertools.count(1001)
            self._custom_association_ids = itertools.count(1000)
            self._association_ids = dict(_DEFAULT_ASSOCIATION_TYPES)
            for name, spec in self._startup_types.items():
                schema = self.schema(name)
                for prop in spec.properties:
                    schema.properties[prop.name] = prop
                schema.required = frozenset(spec.required)

    # -- schemas ---------------------------------------------------------------------

    def schema(self, type_name: str) -> TypeSchema:
        """The type's schema; unknown names become custom object types on first use."""
        name = canonical_type(type_name)
        with self._lock:
            if name not in self._schemas:
                info = STANDARD_TYPES.get(name) or custom_type_info(name, len(self._schemas))
                props = system_properties(info) + SEED_PROPERTIES.get(name, [])
                self._schemas[name] = TypeSchema(info, {p.name: p for p in props})
                self._objects[name] = {}
            return self._schemas[name]

    def add_property(self, type_name: str, prop: PropertyDef) -> PropertyDef:
        with self._lock:
            schema = self.schema(type_name)
            if prop.name in schema.properties:
                raise HubSpotError(
                    409, f"Property named '{prop.name}' already exists.", "OBJECT_ALREADY_EXISTS"
                )
            schema.properties[prop.name] = prop
            return prop

    # -- reads -----------------------------------------------------------------------

    def get(
        self, type_name: str, key: str, id_property: str | None = None, *, archived: bool = False
    ) -> CrmObject:
        with self._lock:
            found = self._lookup(self.schema(type_name), key, id_property, archived=archived)
            if found is None:
                raise errors.not_found(key)
            return found

    def objects(self, type_name: str, *, archived: bool = False) -> list[CrmObject]:
        with self._lock:
            objects = self._objects[self.schema(type_name).info.name].values()
            chosen = [o for o in objects if (o.archived_at is not None) == archived]
        return sorted(chosen, key=lambda o: int(o.id))

    def read_many(
        self, type_name: str, keys: Sequence[str], id_property: str | None, archived: bool
    ) -> tuple[list[CrmObject], list[str]]:
        """Found objects and the keys that matched nothing."""
        with self._lock:
            schema = self.schema(type_name)
            hits = {k: self._lookup(schema, k, id_property, archived=archived) for k in keys}
        return [o for o in hits.values() if o], [k for k, o in hits.items() if o is None]

    # -- writes ----------------------------------------------------------------------

    def create(
        self, type_name: str, inputs: Sequence[WriteInput], multi_status: bool
    ) -> BatchResult:
        schema = self.schema(type_name)

        def plan(item: WriteInput, claims: _Claims) -> Apply:
            return self._plan_create(schema, item, claims)

        return self._run(inputs, plan, multi_status)

    def update(
        self, type_name: str, inputs: Sequence[WriteInput], multi_status: bool
    ) -> BatchResult:
        schema = self.schema(type_name)
        _reject_duplicate_ids([i.id or "" for i in inputs])

        def plan(item: WriteInput, claims: _Claims) -> Apply:
            target = self._lookup(schema, item.id or "", item.id_property)
            if target is None:
                raise errors.not_found(item.id or "")
            return self._plan_update(schema, target, item, claims, new=None)

        return self._run(inputs, plan, multi_status)

    def upsert(
        self, type_name: str, inputs: Sequence[WriteInput], multi_status: bool
    ) -> BatchResult:
        schema = self.schema(type_name)
        _reject_duplicate_ids([i.id or "" for i in inputs])

        def plan(item: WriteInput, claims: _Claims) -> Apply:
            prop = item.id_property or ""
            if prop not in schema.unique_properties():
                raise errors.bad_request(
                    f"Unable to perform update/upsert by non-unique {schema.info.type_id} "
                    f"property {prop} in portal ID {self.portal_id}"
                )
            target = self._lookup(schema, item.id or "", prop)
            if target is not None:
                return self._plan_update(schema, target, item, claims, new=False)
            props = item.properties
            if isinstance(props, Mapping):
                props = {**props, prop: item.id}
            created = self._plan_create(schema, WriteInput(props, trace_id=item.trace_id), claims)
            return lambda: _mark_new(created())

        return self._run(inputs, plan, multi_status)

    def archive(self, type_name: str, keys: Sequence[str]) -> None:
        """Unknown and already-archived ids are ignored: HubSpot answers 204 for them too."""
        with self._lock:
            schema = self.schema(type_name)
            moment = _now()
            for key in keys:
                target = self._lookup(schema, key, None)
                if target is not None:
                    target.archived_at = moment

    # -- associations ----------------------------------------------------------------

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> list[Edge]:
        with self._lock:
            a, b = self.get(from_type, from_id), self.get(to_type, to_id)
            ta, tb = self.schema(from_type).info.name, self.schema(to_type).info.name
            edges = [
                Edge(ta, a.id, tb, b.id, self._association_type(ta, tb)),
                Edge(tb, b.id, ta, a.id, self._association_type(tb, ta)),
            ]
            self._edges.update(edges)
            return edges

    def disassociate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        ta, tb = self.schema(from_type).info.name, self.schema(to_type).info.name
        with self._lock:
            self._edges = {
                e
                for e in self._edges
                if {(e.from_type, e.from_id), (e.to_type, e.to_id)} != {(ta, from_id), (tb, to_id)}
            }

    def edges(self) -> list[Edge]:
        """Every association between live objects, in both directions."""
        with self._lock:
            live = {
                (type_name, object_id)
                for type_name, objects in self._objects.items()
                for object_id, obj in objects.items()
                if obj.archived_at is None
            }
            return sorted(
                e
                for e in self._edges
                if (e.from_type, e.from_id) in live and (e.to_type, e.to_id) in live
            )

    def associations_of(self, from_type: str, from_id: str, to_type: str) -> dict[str, list[int]]:
        """Associated live object ids -> association type ids."""
        with self._lock:
            source = self.get(from_type, from_id)
            ta, tb = self.schema(from_type).info.name, self.schema(to_type).info.name
            live = {o.id for o in self.objects(tb)}
            grouped: dict[str, list[int]] = {}
            for edge in sorted(self._edges):
                if (edge.from_type, edge.from_id, edge.to_type) == (ta, source.id, tb) and (
                    edge.to_id in live
                ):
                    grouped.setdefault(edge.to_id, []).append(edge.type_id)
        return dict(sorted(grouped.items(), key=lambda item: int(item[0])))

    # -- internals -------------------------------------------------------------------

    def _run(
        self,
        inputs: Sequence[WriteInput],
        plan: Callable[[WriteInput, _Claims], Apply],
        multi_status: bool,
    ) -> BatchResult:
        """Plan every input, then apply. Without multi-status the first invalid input
        rejects the whole batch; missing objects are always reported per input."""
        result = BatchResult()
        with self._lock:
            claims: _Claims = {}
            planned: list[Apply] = []
            for item in inputs:
                try:
                    planned.append(plan(item, claims))
                except HubSpotError as exc:
                    if not multi_status and exc.category != "OBJECT_NOT_FOUND":
                        raise
                    result.errors.append((exc, item.trace_id))
            result.written = [apply() for apply in planned]
        return result

    def _plan_create(self, schema: TypeSchema, item: WriteInput, claims: _Claims) -> Apply:
        values = validate_properties(schema, item.properties, self.portal_id, creating=True)
        values = {k: v for k, v in values.items() if v != ""}
        new_id = str(next(self._ids))
        self._check_unique(schema, values, new_id, claims)

        def apply() -> Written:
            moment = _now()
            obj = CrmObject(new_id, values, moment, moment)
            self._objects[schema.info.name][new_id] = obj
            return Written(obj, item.trace_id)

        return apply

    def _plan_update(
        self,
        schema: TypeSchema,
        target: CrmObject,
        item: WriteInput,
        claims: _Claims,
        new: bool | None,
    ) -> Apply:
        changes = validate_properties(schema, item.properties, self.portal_id, creating=False)
        merged = {k: v for k, v in (target.properties | changes).items() if v != ""}
        self._check_unique(schema, merged, target.id, claims)

        def apply() -> Written:
            target.properties = merged
            target.updated_at = _now()
            return Written(target, item.trace_id, new)

        return apply

    def _check_unique(
        self, schema: TypeSchema, values: Mapping[str, str], own_id: str, claims: _Claims
    ) -> None:
        for prop in schema.unique_properties():
            value = values.get(prop)
            if not value:
                continue
            claimed = claims.setdefault((prop, value), own_id)
            if claimed != own_id:
                raise errors.conflict(
                    f"Duplicate {prop} in batch input: {value}", propertyName=[prop]
                )
            existing = self._lookup(schema, value, prop)
            if existing is not None and existing.id != own_id:
                message = f"{schema.info.label} already exists. Existing ID: {existing.id}"
                if (schema.info.name, prop) == ("contacts", "email"):
                    raise errors.conflict(message)  # HubSpot's exact, context-free form
                raise errors.conflict(message, propertyName=[prop])

    def _lookup(
        self, schema: TypeSchema, key: str, id_property: str | None, *, archived: bool = False
    ) -> CrmObject | None:
        objects = self._objects[schema.info.name]
        candidates: Iterator[CrmObject]
        if id_property in (None, "hs_object_id"):
            candidates = iter([objects[key]] if key in objects else [])
        else:
            wanted = check_value(schema, id_property, key)
            candidates = (o for o in objects.values() if o.properties.get(id_property) == wanted)
        return next((o for o in candidates if (o.archived_at is not None) == archived), None)

    def _association_type(self, from_type: str, to_type: str) -> int:
        key = (from_type, to_type)
        if key not in self._association_ids:
            self._association_ids[key] = next(self._custom_association_ids)
        return self._association_ids[key]


def _mark_new(written: Written) -> Written:
    written.new = True
    return written


def _reject_duplicate_ids(ids: Sequence[str]) -> None:
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise errors.bad_request(f"Duplicate IDs found in batch input: {duplicates}")


def single(result: BatchResult) -> Written:
    """The one outcome of a single-object write; its error, if any, is raised."""
    if result.errors:
        raise result.errors[0][0]
    return result.written[0]


def check_batch_size(inputs: Sequence[object]) -> None:
    if not 1 <= len(inputs) <= MAX_BATCH:
        raise errors.bad_request(
            f"Batch input must contain between 1 and {MAX_BATCH} inputs (got {len(inputs)})"
        )
