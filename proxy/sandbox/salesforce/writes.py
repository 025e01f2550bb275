"""The writes of one API call, applied in input order under the store lock. With
allOrNone, one failed record undoes every change the call made and the others report
ALL_OR_NONE_OPERATION_ROLLED_BACK; without it, valid records stick."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import ApiError, entity_deleted, rolled_back
from .ids import to18
from .rules import Checker, RuleContext, same_value
from .schema import FieldDef, SObjectSchema
from .store import Record, Store, now


@dataclass
class Outcome:
    """A SaveResult / UpsertResult / DeleteResult."""

    id: str | None = None
    errors: list[ApiError] = field(default_factory=list)
    created: bool | None = None
    # Ids matching an upsert's external id when more than one record did.
    matches: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.errors

    def result(self, *, upsert: bool = False) -> dict[str, object]:
        """Failed results carry no `id`, as in Salesforce's own examples."""
        body: dict[str, object] = {}
        if self.success and self.id is not None:
            body["id"] = self.id
        body["success"] = self.success
        body["errors"] = [e.item() for e in self.errors]
        if upsert:
            body["created"] = bool(self.created) and self.success
        return body


def _error(code: str, message: str) -> Outcome:
    return Outcome(errors=[ApiError(code, message, [])])


class WriteBatch:
    def __init__(
        self,
        store: Store,
        context: RuleContext,
        *,
        all_or_none: bool,
        allow_duplicates: bool = False,
    ) -> None:
        self.store = store
        self.all_or_none = all_or_none
        self.allow_duplicates = allow_duplicates
        self._fresh: set[str] = set()
        self._checker = Checker(store, context, self._fresh)
        self._undo: list[tuple[str, Record | None]] = []
        self._outcomes: list[Outcome] = []

    def _record(self, outcome: Outcome) -> Outcome:
        self._outcomes.append(outcome)
        return outcome

    def _save(self, record: Record) -> None:
        self._undo.append((record.id, self.store.get(record.id)))
        self.store.put(record)

    def finish(self) -> list[Outcome]:
        """Every outcome in input order, after rolling back if allOrNone demands it."""
        if self.all_or_none and not all(o.success for o in self._outcomes):
            for record_id, previous in reversed(self._undo):
                if previous is None:
                    self.store.drop(record_id)
                else:
                    self.store.put(previous)
            self._undo.clear()
            self._outcomes = [
                o if not o.success else Outcome(errors=[rolled_back()]) for o in self._outcomes
            ]
        return self._outcomes

    # -- operations -------------------------------------------------------------------

    def create(self, schema: SObjectSchema, changes: dict[str, object]) -> Outcome:
        if changes.pop("Id", None) is not None:
            return self._record(_error("INVALID_FIELD", "cannot specify Id in an insert call"))
        for item in schema.fields.values():
            if item.default is not None and item.name not in changes:
                changes[item.name] = item.default
        problems = self._checker.errors(
            schema, changes, None, skip_duplicates=self.allow_duplicates
        )
        if problems:
            return self._record(Outcome(errors=problems))
        moment = now()
        record = Record(
            self.store.new_id(schema),
            schema.name,
            {k: v for k, v in changes.items() if v is not None},
            moment,
            moment,
        )
        self._save(record)
        self._fresh.add(record.id)
        return self._record(Outcome(record.id, created=True))

    def _target(self, raw_id: object, schema: SObjectSchema | None) -> Record | Outcome:
        if raw_id is None or raw_id == "":
            return _error("MISSING_ARGUMENT", "Id not specified in an update call")
        record_id = to18(str(raw_id))
        if record_id is None:
            return _error("MALFORMED_ID", f"malformed id {raw_id}")
        record = self.store.get(record_id)
        if record is None or (schema is not None and record.type != schema.name):
            return _error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if record.deleted:
            return Outcome(errors=[entity_deleted()])
        return record

    def update(
        self, schema: SObjectSchema | None, raw_id: object, changes: dict[str, object]
    ) -> Outcome:
        """`schema` None: the type comes from the id (mixed-type collections)."""
        target = self._target(raw_id, schema)
        if isinstance(target, Outcome):
            return self._record(target)
        return self._record(self._apply_update(target, changes))

    def _apply_update(self, record: Record, changes: dict[str, object]) -> Outcome:
        changes.pop("Id", None)
        schema = self.store.schema_of(record)
        problems = self._checker.errors(
            schema, changes, record, skip_duplicates=self.allow_duplicates
        )
        if problems:
            return Outcome(errors=problems)
        values = {k: v for k, v in (dict(record.values) | changes).items() if v is not None}
        self._save(replace(record, values=values, modified=now()))
        return Outcome(record.id, created=False)

    def upsert(
        self, schema: SObjectSchema, key: FieldDef, value: object, changes: dict[str, object]
    ) -> Outcome:
        if value is None:
            return self._record(_error("MISSING_ARGUMENT", f"{key.name} not specified"))
        if key.name == "Id":
            target = self._target(value, schema)
            if isinstance(target, Outcome):
                return self._record(target)
            return self._record(self._apply_update(target, changes))
        given = changes.get(key.name)
        if given is not None and not same_value(key, given, value):
            message = f"{key.name}: the value in the body does not match the URL's external id"
            return self._record(_error("INVALID_FIELD", message))
        matches = [
            r
            for r in self.store.records(schema.name)
            if same_value(key, r.values.get(key.name), value)
        ]
        if len(matches) > 1:
            ids = [r.id for r in matches]
            message = f"{key.name}: more than one record found for external id field: {ids}"
            outcome = _error("DUPLICATE_EXTERNAL_ID", message)
            outcome.matches = ids
            return self._record(outcome)
        if matches:
            changes.pop(key.name, None)
            return self._record(self._apply_update(matches[0], changes))
        return self.create(schema, changes | {key.name: value})

    def delete(self, raw_id: object) -> Outcome:
        target = self._target(raw_id, None)
        if isinstance(target, Outcome):
            return self._record(target)
        self._save(replace(target, deleted=True, modified=now()))
        return self._record(Outcome(target.id))
