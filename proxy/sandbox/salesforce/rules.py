"""Save-time checks for one record, in Salesforce's order of execution: field-level
checks (writability, formats, lengths, picklists, references), required fields, the
org's validation rules, duplicate rules, then unique indexes. The first stage that finds
problems reports all of its errors; later stages do not run."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass

from .config import ValidationRule
from .errors import ApiError, entity_deleted
from .ids import to18
from .schema import FieldDef, SObjectSchema
from .store import Record, Store
from .values import check

DUPLICATE_MESSAGE = "Use one of these records?"
# Standard duplicate rules: Contacts and Leads match each other on Email.
_DUPLICATE_SCOPE = ("Contact", "Lead")


@dataclass(frozen=True)
class RuleContext:
    version: str
    duplicate_rules: bool
    validation_rules: Sequence[ValidationRule]


def same_value(item: FieldDef, left: object, right: object) -> bool:
    """Equality as unique indexes and external ids see it (text: case-insensitive
    unless the field is case-sensitive)."""
    if isinstance(left, str) and isinstance(right, str) and not item.case_sensitive:
        return left.casefold() == right.casefold()
    return left == right


class Checker:
    def __init__(self, store: Store, context: RuleContext, fresh_ids: Set[str]) -> None:
        self.store = store
        self.context = context
        # Duplicate rules do not see records created earlier in the same call.
        self.fresh_ids = fresh_ids

    def errors(
        self,
        schema: SObjectSchema,
        changes: dict[str, object],
        existing: Record | None,
        *,
        skip_duplicates: bool = False,
    ) -> list[ApiError]:
        """Checks `changes` (normalising them in place) against the saved record."""
        merged = dict(existing.values if existing else {}) | changes
        creating = existing is None
        stages: list[Callable[[], list[ApiError]]] = [
            lambda: self._field_errors(schema, changes, creating=creating),
            lambda: self._required_errors(schema, merged, changes, creating=creating),
            lambda: self._rule_errors(schema, merged),
            lambda: (
                self._duplicate_errors(schema, merged, changes, existing)
                if not skip_duplicates
                else []
            ),
            lambda: self._unique_errors(schema, merged, changes, existing),
        ]
        for stage in stages:
            found = stage()
            if found:
                return found
        return []

    def _field_errors(
        self, schema: SObjectSchema, changes: dict[str, object], *, creating: bool
    ) -> list[ApiError]:
        locked = [
            name
            for name in changes
            if not (schema.fields[name].createable if creating else schema.fields[name].updateable)
        ]
        if locked:
            message = (
                f"Unable to create/update fields: {', '.join(locked)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set."
            )
            return [ApiError("INVALID_FIELD_FOR_INSERT_UPDATE", message, locked)]
        problems: list[ApiError] = []
        for name, value in list(changes.items()):
            item = schema.fields[name]
            changes[name], problem = check(item, value)
            if problem is None and item.type == "reference" and value is not None:
                changes[name], problem = self._reference(item, str(value))
            if problem is not None:
                problems.append(problem)
        return problems

    def _reference(self, item: FieldDef, raw: str) -> tuple[str, ApiError | None]:
        wrong_type = f"{item.label}: id value of incorrect type: {raw}"
        target_id = to18(raw)
        if target_id is None:
            return raw, ApiError("MALFORMED_ID", wrong_type, [item.name])
        target_schema = self.store.catalog.by_prefix(target_id)
        if target_schema is None or target_schema.name not in item.reference_to:
            return raw, ApiError("FIELD_INTEGRITY_EXCEPTION", wrong_type, [item.name])
        target = self.store.get(target_id)
        if target is None:
            message = "invalid cross reference id"
            return raw, ApiError("INVALID_CROSS_REFERENCE_KEY", message, [item.name])
        if target.deleted:
            return raw, ApiError("ENTITY_IS_DELETED", entity_deleted().message, [item.name])
        return target_id, None

    def _required_errors(
        self,
        schema: SObjectSchema,
        merged: Mapping[str, object],
        changes: Mapping[str, object],
        *,
        creating: bool,
    ) -> list[ApiError]:
        missing = [
            f.name
            for f in schema.fields.values()
            if f.required and (creating or f.name in changes) and merged.get(f.name) is None
        ]
        if not missing:
            return []
        message = f"Required fields are missing: [{', '.join(missing)}]"
        return [ApiError("REQUIRED_FIELD_MISSING", message, missing)]

    def _rule_errors(self, schema: SObjectSchema, merged: Mapping[str, object]) -> list[ApiError]:
        problems = []
        for rule in self.context.validation_rules:
            item = schema.field(rule.field)
            if rule.object.lower() != schema.name.lower() or item is None:
                continue
            value = merged.get(item.name)
            if value is not None and re.search(rule.forbidden_regex, _text(value)):
                problems.append(
                    ApiError("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [item.name])
                )
        return problems

    def _duplicate_errors(
        self,
        schema: SObjectSchema,
        merged: Mapping[str, object],
        changes: Mapping[str, object],
        existing: Record | None,
    ) -> list[ApiError]:
        email = merged.get("Email")
        if (
            not self.context.duplicate_rules
            or schema.name not in _DUPLICATE_SCOPE
            or not isinstance(email, str)
            or (existing is not None and "Email" not in changes)
        ):
            return []
        matches: dict[str, list[str]] = {}
        for type_name in _DUPLICATE_SCOPE:
            for record in self.store.records(type_name):
                other = record.values.get("Email")
                if (
                    isinstance(other, str)
                    and other.casefold() == email.casefold()
                    and record.id not in self.fresh_ids
                    and (existing is None or record.id != existing.id)
                ):
                    matches.setdefault(type_name, []).append(record.id)
        if not matches:
            return []
        result = self._duplicate_result(schema.name, matches)
        return [ApiError("DUPLICATES_DETECTED", DUPLICATE_MESSAGE, [], {"duplicateResult": result})]

    def _duplicate_result(self, type_name: str, matches: dict[str, list[str]]) -> dict[str, object]:
        version = self.context.version
        return {
            "allowSave": False,
            "duplicateRule": f"Standard_{type_name}_Duplicate_Rule",
            "duplicateRuleEntityType": type_name,
            "errorMessage": DUPLICATE_MESSAGE,
            "matchResults": [
                {
                    "entityType": matched_type,
                    "errors": [],
                    "matchEngine": "ExactMatchEngine",
                    "matchRecords": [
                        {
                            "additionalInformation": [],
                            "fieldDiffs": [],
                            "matchConfidence": 100.0,
                            "record": {
                                "attributes": {
                                    "type": matched_type,
                                    "url": f"/services/data/v{version}/sobjects/{matched_type}/{i}",
                                },
                                "Id": i,
                            },
                        }
                        for i in ids
                    ],
                    "rule": f"Standard_{matched_type}_Match_Rule_v1_1",
                    "size": len(ids),
                    "success": True,
                }
                for matched_type, ids in matches.items()
            ],
        }

    def _unique_errors(
        self,
        schema: SObjectSchema,
        merged: Mapping[str, object],
        changes: Mapping[str, object],
        existing: Record | None,
    ) -> list[ApiError]:
        problems = []
        for item in schema.fields.values():
            value = merged.get(item.name)
            if not item.unique or value is None or item.name not in changes:
                continue
            for record in self.store.records(schema.name):
                if (existing is None or record.id != existing.id) and same_value(
                    item, record.values.get(item.name), value
                ):
                    message = (
                        f"duplicate value found: {item.name} duplicates value on record "
                        f"with id: {record.id}"
                    )
                    problems.append(ApiError("DUPLICATE_VALUE", message, []))
                    break
        return problems


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
