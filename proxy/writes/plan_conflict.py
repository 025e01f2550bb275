"""Planning ``INSERT ... ON CONFLICT`` on a synced table: which column the vendor
upserts by, and for DO UPDATE the statements that let PostgreSQL evaluate the clause
on the staging copy.

Apart from ``plan`` because it is the one involved part of INSERT planning; it uses
only the shared helpers of ``plan_sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pglast import ast
from pglast.enums import OnConflictAction, SortByDir, SortByNulls

from proxy.writes.plan_sql import (
    Unsupported,
    _column_names,
    _parse_one,
    _present,
    _refuse_assigned,
    _retarget_to_stage,
    _select_list,
    _target_ref,
    deparse,
)
from proxy.writes.tables import SyncedTable, quote_ident


@dataclass(frozen=True)
class Conflict:
    """``ON CONFLICT (key) DO ...``: a vendor upsert (or create-if-absent).

    For DO UPDATE, PostgreSQL evaluates the whole clause (SET expressions, WHERE) on the
    staging copy seeded with the existing local rows whose key conflicts (``seed``);
    ``dry_run`` returns each resulting row and whether it was inserted."""

    key_column: str
    action: Literal["nothing", "update"]
    select_existing: str = ""  # DO UPDATE: lock and read the local rows with these keys
    seed: tuple[str, ...] = ()  # DO UPDATE: index and fill the staging copy ($1: rows)
    dry_run: str = ""  # DO UPDATE: the client's statement on the staging copy


def _conflict_statements(sql: str, table: SyncedTable, key: str) -> tuple[tuple[str, ...], str]:
    """The seeding statements and the dry run that let PostgreSQL evaluate DO UPDATE."""
    statement = _parse_one(sql)
    assert isinstance(statement, ast.InsertStmt)
    clause = _present(statement.onConflictClause)
    ref, _ = _target_ref(_present(statement.relation))
    _retarget_to_stage(statement, table)
    if _present(clause.infer).conname:
        # The staging copy's unique index has another name: infer it from the column.
        elem = ast.IndexElem(
            name=key,
            ordering=SortByDir.SORTBY_DEFAULT,
            nulls_ordering=SortByNulls.SORTBY_NULLS_DEFAULT,
        )
        clause.infer = ast.InferClause(indexElems=(elem,))
    targets = _select_list(f"SELECT to_jsonb({ref}), ({ref}.xmax::text = '0')")
    statement.returningClause = ast.ReturningClause(exprs=targets)
    stage_name = quote_ident(table.name)
    columns = ", ".join(quote_ident(c) for c in table.writable_columns)
    seed = (
        f"CREATE UNIQUE INDEX ON pg_temp.{stage_name} ({quote_ident(key)})",
        f"INSERT INTO pg_temp.{stage_name} ({columns}) SELECT {columns} "
        f"FROM jsonb_populate_recordset(NULL::{table.qualified}, $1::jsonb)",
    )
    return seed, deparse(statement)


def _plan_conflict(
    clause: ast.OnConflictClause | None, table: SyncedTable, sql: str
) -> Conflict | None:
    if clause is None:
        return None
    infer = clause.infer
    if infer is not None and infer.conname:
        # ON CONSTRAINT name: the single-column unique constraint it names, if any.
        constraints = table.unique_constraints.items()
        keys = [column for column, name in constraints if name == infer.conname]
    else:
        keys = [elem.name for elem in (infer.indexElems or ())] if infer is not None else []
    if infer is None and clause.action == OnConflictAction.ONCONFLICT_NOTHING:
        # No target: any uniqueness conflict; at the vendor that is its upsert key.
        keys = sorted(table.upsert_keys)
    if len(keys) != 1 or keys[0] not in table.upsert_keys:
        allowed = ", ".join(sorted(table.upsert_keys)) or "none"
        raise Unsupported(
            f"ON CONFLICT on the synced table {table.display} must name one column the "
            f"vendor can upsert by (allowed: {allowed})",
            "Use ON CONFLICT (email) for HubSpot contacts.",
        )
    if clause.action == OnConflictAction.ONCONFLICT_NOTHING:
        return Conflict(keys[0], "nothing")
    _refuse_assigned(table, _column_names(clause.targetList))
    key = quote_ident(keys[0])
    select_existing = (
        f"SELECT to_jsonb(t) FROM {table.qualified} AS t WHERE t.{key}::text "
        f"IN (SELECT jsonb_array_elements_text($1::jsonb)) FOR UPDATE OF t"
    )
    seed, dry_run = _conflict_statements(sql, table, keys[0])
    return Conflict(keys[0], "update", select_existing, seed, dry_run)
