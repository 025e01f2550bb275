"""Planning ``INSERT ... ON CONFLICT`` on a synced table: which column the vendor
upserts by, and for DO UPDATE how the executor locks the rows the clause updated.

Apart from ``plan`` because it is the one involved part of INSERT planning; it uses
only the shared helpers of ``plan_sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pglast import ast
from pglast.enums import OnConflictAction

from proxy.writes.plan_sql import (
    Unsupported,
    _column_names,
    _refuse_assigned,
)
from proxy.writes.tables import SyncedTable, quote_ident


@dataclass(frozen=True)
class Conflict:
    """``ON CONFLICT (key) DO ...``: a vendor upsert (or create-if-absent).

    PostgreSQL evaluates the whole clause (arbiter, SET expressions, WHERE) in the dry
    run on the real table; for DO UPDATE, ``lock_existing`` locks and reads the rows it
    updated (by id), so that the executor can run it again with them held."""

    key_column: str
    action: Literal["nothing", "update"]
    lock_existing: str = ""  # DO UPDATE: $1 is a JSON array of ids


def _plan_conflict(clause: ast.OnConflictClause | None, table: SyncedTable) -> Conflict | None:
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
    ident = quote_ident(table.id_column)
    lock_existing = (
        f"SELECT pg_catalog.to_jsonb(t) FROM {table.qualified} AS t WHERE t.{ident}::text "
        "OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text("
        "$1::jsonb))) FOR UPDATE OF t"
    )
    return Conflict(keys[0], "update", lock_existing)
