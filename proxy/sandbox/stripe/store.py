"""In-memory account state: every object by type and id, live or deleted, in creation
order. Objects are kept as the JSON dicts the API renders (keys starting with `_` are
internal and never rendered); callers get deep copies, so a half-built change never
leaks into the store."""

from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import dataclass

TYPES = ("customers", "products", "prices", "coupons")

Obj = dict[str, object]


@dataclass
class Record:
    obj: Obj
    seq: int
    deleted: bool = False


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self._records: dict[str, dict[str, Record]] = {t: {} for t in TYPES}
            self._seq = itertools.count(1)

    def exists(self, type_name: str, object_id: str) -> bool:
        """Whether the id was ever used (Stripe never reuses one, even after a delete)."""
        with self.lock:
            return object_id in self._records[type_name]

    def get(self, type_name: str, object_id: str, *, deleted: bool = False) -> Obj | None:
        """A copy of the live object (or, with `deleted`, of a deleted one)."""
        with self.lock:
            record = self._records[type_name].get(object_id)
            if record is None or record.deleted != deleted:
                return None
            return copy.deepcopy(record.obj)

    def put(self, type_name: str, obj: Obj) -> None:
        """Insert a new object, or replace a live one keeping its place in the order."""
        object_id = str(obj["id"])
        with self.lock:
            records = self._records[type_name]
            record = records.get(object_id)
            if record is None:
                records[object_id] = Record(copy.deepcopy(obj), next(self._seq))
            else:
                record.obj = copy.deepcopy(obj)

    def delete(self, type_name: str, object_id: str) -> None:
        with self.lock:
            self._records[type_name][object_id].deleted = True

    def objects(self, type_name: str, *, deleted: bool = False) -> list[Obj]:
        """Copies, newest first (Stripe's list order)."""
        with self.lock:
            records = [r for r in self._records[type_name].values() if r.deleted == deleted]
            records.sort(key=lambda r: r.seq, reverse=True)
            return [copy.deepcopy(r.obj) for r in records]


def render(obj: Obj) -> Obj:
    """The object as the API shows it: internal (`_`) keys dropped."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def deleted_stub(obj: Obj) -> Obj:
    return {"id": obj["id"], "object": obj["object"], "deleted": True}
