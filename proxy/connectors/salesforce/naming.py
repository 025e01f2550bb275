"""Salesforce's side of the table mapping (Sequin's layout), read from the org's
describe at startup: table ``contact`` ↔ sObject ``Contact`` (custom objects keep
``__c``: ``invoice__c`` ↔ ``Invoice__c``), columns are the snake_case of field API
names matched without regard to case (``first_name`` ↔ FirstName, ``user_id__c`` ↔
User_Id__c), fields Salesforce computes (system fields, formulas) are read-only, fields
it lets be set only at creation are immutable, and external-id fields are upsert keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from ..http import as_list
from ..mapping import Capabilities, MappingError, ObjectMapping, TableShape

_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(api_name: str) -> str:
    """``FirstName`` -> ``first_name``, ``User_Id__c`` -> ``user_id__c``,
    ``SLAExpirationDate__c`` -> ``sla_expiration_date__c``."""
    return _WORD.sub("_", api_name).lower()


def _loose(name: str) -> str:
    return name.replace("_", "").casefold()


def find_name(wanted: str, names: Sequence[str]) -> str | None:
    """The API name a table or column name stands for: the same name in any case,
    then its snake_case form, then ignoring underscores; None if none or ambiguous."""
    tests: list[Callable[[str], bool]] = [
        lambda name: name.casefold() == wanted.casefold(),
        lambda name: snake(name) == wanted.casefold(),
        lambda name: _loose(name) == _loose(wanted),
    ]
    for same in tests:
        found = [name for name in names if same(name)]
        if len(found) == 1:
            return found[0]
    return None


def map_object(
    shape: TableShape, object_name: str, describe: Mapping[str, object]
) -> ObjectMapping:
    fields = as_list(describe.get("fields"))
    by_name = {str(f["name"]): f for f in fields if "name" in f}
    names = list(by_name)
    properties: dict[str, str] = {}
    read_only: set[str] = set(shape.read_only)
    read_only_properties: dict[str, str] = {}
    immutable: set[str] = set()
    upsert: list[str] = []
    for column in shape.column_names:
        wanted = shape.renames.get(column, column)
        field = find_name(wanted, names)
        if field is None:
            raise MappingError(
                f"synced table {shape.display}: column {column} matches no field of the "
                f"Salesforce object {object_name} (columns are the snake_case of field API "
                "names; rename it in [[synced_tables]] columns, or list it in local_columns)"
            )
        info = by_name[field]
        createable, updateable = bool(info.get("createable")), bool(info.get("updateable"))
        if column in read_only or info.get("calculated") or not (createable or updateable):
            read_only.add(column)
            read_only_properties[column] = field
            continue
        properties[column] = field
        if createable and not updateable:
            immutable.add(column)
        if info.get("externalId"):
            upsert.append(column)
    if shape.upsert_keys is not None:
        for column in shape.upsert_keys:
            if column not in upsert:
                raise MappingError(
                    f"synced table {shape.display}: upsert key {column} is not an external "
                    f"id field of {object_name} (Salesforce upserts only by external ids)"
                )
        upsert = list(shape.upsert_keys)
    capabilities = Capabilities(
        create=bool(describe.get("createable", True)),
        create_hint=f"This Salesforce user cannot create {object_name} records.",
        delete=bool(describe.get("deletable", True)),
        delete_hint=f"This Salesforce user cannot delete {object_name} records.",
        immutable=frozenset(immutable),
        immutable_hint="Salesforce lets this field be set only when the record is created.",
    )
    return ObjectMapping(
        object_name,
        properties,
        frozenset(read_only),
        frozenset(upsert),
        capabilities,
        read_only_properties=read_only_properties,
    )
