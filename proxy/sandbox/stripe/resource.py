"""What a Stripe resource type (customers, products, prices, coupons) tells the generic
routes: its parameter schemas, how to build, change and delete its objects, its list
filters, search fields and expandable properties."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

from . import errors
from .params import Field, MetadataChange
from .search import SearchField
from .store import Obj, Store, deleted_stub, render


class Resource(ABC):
    name: ClassVar[str]  # URL segment and `/_sandbox/objects/{type}` name
    object_name: ClassVar[str]
    label: ClassVar[str]  # as in "No such customer: 'cus_x'"
    create_spec: ClassVar[Mapping[str, Field]]
    update_spec: ClassVar[Mapping[str, Field]]
    list_spec: ClassVar[Mapping[str, Field]] = {}
    search_fields: ClassVar[Mapping[str, SearchField]] = {}
    expandable: ClassVar[frozenset[str]] = frozenset()
    deletable: ClassVar[bool] = True
    # Stripe answers a retrieve of a deleted customer with its `deleted: true` stub
    # (200); deleted products and coupons are simply gone (404).
    stub_after_delete: ClassVar[bool] = False

    @abstractmethod
    def create(self, params: dict[str, object], store: Store) -> Obj:
        """Validate, build and store a new object (and any it implies); return it."""

    @abstractmethod
    def update(self, obj: Obj, params: dict[str, object], store: Store) -> Obj:
        """Validate and apply an update to a copy of a live object; the caller stores it."""

    def save(self, obj: Obj, params: Mapping[str, object], store: Store) -> None:
        """Store an updated object (a type may have to touch others as it does)."""
        store.put(self.name, obj)

    def check_delete(self, obj: Obj, store: Store) -> None:  # noqa: B027 (optional hook)
        """Raise when Stripe refuses to delete this object."""

    def matches(self, obj: Obj, filters: Mapping[str, object]) -> bool:
        """Whether a live object passes the type's own list filters."""
        return True

    def expand(self, obj: Obj, path: str, store: Store) -> None:  # noqa: B027 (optional hook)
        """Replace the id at `path` in a rendered object with the object it names."""

    # -- shared by the routes --------------------------------------------------------

    def live(self, store: Store, object_id: str) -> Obj:
        obj = store.get(self.name, object_id)
        if obj is None:
            raise errors.resource_missing(self.label, object_id)
        return obj

    def retrieve(self, store: Store, object_id: str) -> Obj:
        obj = store.get(self.name, object_id)
        if obj is not None:
            return render(obj)
        gone = store.get(self.name, object_id, deleted=True)
        if gone is not None and self.stub_after_delete:
            return deleted_stub(gone)
        raise errors.resource_missing(self.label, object_id)


def now() -> int:
    return int(time.time())


def assign(obj: Obj, params: Mapping[str, object], names: tuple[str, ...]) -> None:
    """Copy the given (or unset, None) plain fields onto the object."""
    for name in names:
        if name in params:
            obj[name] = params[name]


def apply_metadata(obj: Obj, params: Mapping[str, object]) -> None:
    change = params.get("metadata")
    if isinstance(change, MetadataChange):
        current = obj.get("metadata")
        obj["metadata"] = change.apply(current if isinstance(current, dict) else {})


def reject_unexpandable(resource: Resource, paths: list[str], prefix: str = "") -> list[str]:
    """The expansions to apply (prefix stripped); unknown ones are refused as Stripe does."""
    chosen: list[str] = []
    for path in paths:
        inner = path[len(prefix) :] if prefix and path.startswith(prefix) else None
        if not prefix:
            inner = path
        if inner not in resource.expandable:
            raise errors.invalid(f"This property cannot be expanded ({path}).", "expand")
        chosen.append(inner)
    return chosen
