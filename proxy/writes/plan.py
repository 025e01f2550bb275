"""Turn one INSERT/UPDATE/DELETE on a synced table into the statements the executor
runs (DESIGN 4.2): PostgreSQL itself evaluates the client's statement, so defaults,
expressions, casts, subqueries and ``$n`` parameters (in the client's own formats)
behave exactly as they would without the proxy.

* old images (UPDATE/DELETE): ``SELECT to_jsonb(t) ... FOR UPDATE OF t`` with the
  statement's own FROM/USING and WHERE. This fixes the row set once: the statement's
  WHERE is evaluated here and nowhere else (a volatile or concurrently changing WHERE
  cannot select other rows later); the locked ids go to ``writeproxy.ids``;
* new images: the client's own statement on the real table, inside a savepoint that
  is rolled back, ``RETURNING to_jsonb``: an UPDATE by the locked ids, an INSERT with
  the guard's placeholder id (``proxy.guard``). PostgreSQL checks everything it would
  check — privileges, row-level security, constraints, foreign keys, triggers — for
  the client's own role before any API call;
* apply: after the API accepted the change, write the API's values by id with
  ``jsonb_populate_recordset`` and the client's own RETURNING list.

Parsing builds pglast's Python AST, which is slow; plans are cached by statement text.
ON CONFLICT is planned in ``plan_conflict``; the helpers both use are in ``plan_sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pglast import ast, parse_sql
from pglast.enums import BoolExprType

from proxy.writes.plan_conflict import Conflict, _plan_conflict
from proxy.writes.plan_sql import (
    Unsupported,
    _column_names,
    _column_refs,
    _parse_one,
    _present,
    _refuse_assigned,
    _select_list,
    _target_ref,
    assigned_error,
    deparse,
)
from proxy.writes.tables import SyncedTable, quote_ident, quote_literal

Kind = Literal["insert", "update", "delete"]
SOURCE = "writeproxy_src"
SOURCE_ROW = "writeproxy_row"
STAGE_SAVEPOINT = "writeproxy_dry_run"
OLD_ROWS = "writeproxy_old"
#: The ids the old-images query locked, for the UPDATE dry run (transaction local).
IDS_SETTING = "writeproxy.ids"
LOCKED_IDS = (
    "SELECT pg_catalog.jsonb_array_elements_text("
    f"pg_catalog.current_setting('{IDS_SETTING}')::jsonb)"
)


@dataclass(frozen=True)
class WritePlan:
    kind: Kind
    table: SyncedTable
    #: UPDATE/DELETE: lock the target rows; one row: a JSON array of their images
    #: (and, set aside, their ids in ``writeproxy.ids``).
    select_old: str | None
    #: INSERT/UPDATE: the new rows; each row: its image and whether it was inserted.
    dry_run: str | None
    apply: str  # write the API's answer; $1 is a JSON array of rows (or ids)
    set_columns: frozenset[str]  # UPDATE: the columns the client assigns
    conflict: Conflict | None = None
    insert_columns: tuple[str, ...] | None = None  # INSERT: its column list (None: all)
    #: UPDATE ... FROM: the dry run re-evaluates the join, and must find the locked rows.
    rejoins: bool = False


def _returning_json(ref: str) -> ast.ReturningClause:
    """The dry run's RETURNING: the new image, and whether the row is a new one (an
    ON CONFLICT DO UPDATE returns the rows it updated too)."""
    return ast.ReturningClause(
        exprs=_select_list(
            f"SELECT pg_catalog.to_jsonb({ref}), ({ref}.xmax::text OPERATOR(pg_catalog.=) '0')"
        )
    )


def _returning_sql(clause: ast.ReturningClause | None) -> str:
    if clause is None or not clause.exprs:
        return ""
    return " RETURNING " + ", ".join(deparse(target) for target in clause.exprs)


def _with_sql(statement: ast.Node) -> str:
    with_clause = getattr(statement, "withClause", None)
    if with_clause is None:
        return ""
    recursive = "RECURSIVE " if with_clause.recursive else ""
    return f"WITH {recursive}{deparse(with_clause)} "


def plan_write(sql: str, table: SyncedTable) -> WritePlan:
    """Plan ``sql`` (one statement) whose target is ``table``, or raise Unsupported."""
    statements = parse_sql(sql)
    if len(statements) != 1:
        raise Unsupported(
            "a write to a synced table must be the only statement in its query string",
            "Send each statement separately.",
        )
    statement = _present(statements[0].stmt)
    if table.ends is not None:
        _check_association(statement, table)
    if _modifies_in_with(statement):
        raise Unsupported(*_refusal(ast.SelectStmt(), table))
    capabilities = table.capabilities
    if isinstance(statement, ast.InsertStmt):
        if not capabilities.create:
            raise Unsupported(
                f"the vendor cannot create {table.object_type} objects ({table.display})",
                capabilities.create_hint or "Create the object in the vendor's own tools.",
            )
        return _plan_insert(statement, table)
    if isinstance(statement, ast.UpdateStmt):
        return _plan_update(statement, table)
    if isinstance(statement, ast.DeleteStmt):
        if not capabilities.delete:
            raise Unsupported(
                f"the vendor cannot delete {table.object_type} objects ({table.display})",
                capabilities.delete_hint or "Mark the row inactive instead.",
            )
        return _plan_delete(statement, table)
    raise Unsupported(*_refusal(statement, table))


def _modifies_in_with(statement: ast.Node) -> bool:
    """A data-modifying WITH query (PostgreSQL allows them only at the top level): the
    write it holds, or the outer statement's target, would escape the proxy."""
    with_clause = getattr(statement, "withClause", None)
    dml = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
    return with_clause is not None and any(
        isinstance(cte.ctequery, dml) for cte in with_clause.ctes or ()
    )


def _refusal(statement: ast.Node, table: SyncedTable) -> tuple[str, str]:
    """Why a statement that touches a synced table cannot be translated, and a hint."""
    if isinstance(statement, ast.SelectStmt):
        return (
            f"data-modifying WITH queries on the synced table {table.display} are not supported",
            "Write to the synced table in its own INSERT, UPDATE or DELETE statement.",
        )
    if isinstance(statement, ast.PrepareStmt):
        return (
            f"PREPARE of a write to the synced table {table.display} is not supported",
            "Use your driver's prepared statements (the extended protocol) instead.",
        )
    if isinstance(statement, ast.ExplainStmt):
        return (
            f"EXPLAIN of a write to the synced table {table.display} is not supported",
            "EXPLAIN ANALYZE would perform the write; explain it against the database directly.",
        )
    if isinstance(statement, ast.TruncateStmt):
        return (
            f"TRUNCATE of the synced table {table.display} is not supported",
            "Delete rows with DELETE so that the vendor API archives them too.",
        )
    if isinstance(statement, ast.CopyStmt) and not statement.is_from:
        return (
            f"COPY of a statement that writes the synced table {table.display} is not supported",
            "Run the INSERT, UPDATE or DELETE on its own; COPY only what it returns.",
        )
    if isinstance(statement, ast.CopyStmt):
        return (
            f"COPY FROM into the synced table {table.display} is not supported",
            "Use INSERT statements; multi-row INSERTs are sent to the vendor in batches.",
        )
    if isinstance(statement, ast.MergeStmt):
        return (
            f"MERGE into the synced table {table.display} is not supported",
            "Use INSERT ... ON CONFLICT, UPDATE or DELETE.",
        )
    return (
        f"{type(statement).__name__.removesuffix('Stmt')} on the synced table "
        f"{table.display} is not supported through the proxy",
        "Change the schema of synced tables directly on the upstream database.",
    )


def _plan_insert(statement: ast.InsertStmt, table: SyncedTable) -> WritePlan:
    ref, alias = _target_ref(_present(statement.relation))
    # INSERT may name the id or a read-only column as long as the value is NULL/DEFAULT
    # (ORMs such as ActiveRecord list every column); the executor checks the values.
    insert_columns = tuple(_column_names(statement.cols)) or None
    conflict = _plan_conflict(statement.onConflictClause, table)
    returning = _returning_sql(statement.returningClause)
    statement.returningClause = _returning_json(ref)
    dry_run = deparse(statement)

    columns = ", ".join(quote_ident(c) for c in table.writable_columns)
    upsert = ""
    if conflict is not None:
        updates = ", ".join(
            f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}"
            for c in table.writable_columns
            if c not in (table.id_column, "_sync_inserted_at")
        )
        upsert = f" ON CONFLICT ({quote_ident(table.id_column)}) DO UPDATE SET {updates}"
    apply = (
        f"INSERT INTO {table.qualified}{alias} ({columns}) SELECT {columns} "
        f"FROM pg_catalog.jsonb_populate_recordset(NULL::{table.qualified}, $1::jsonb)"
        f"{upsert}{returning}"
    )
    return WritePlan("insert", table, None, dry_run, apply, frozenset(), conflict, insert_columns)


def _old_rows_sql(
    statement: ast.UpdateStmt | ast.DeleteStmt,
    extra_from: tuple[ast.Node, ...] | None,
    ref: str,
    id_column: str,
) -> str:
    relation = _present(statement.relation)
    from_items = [deparse(relation), *(deparse(item) for item in extra_from or ())]
    where = statement.whereClause
    if isinstance(where, ast.CurrentOfExpr):
        raise Unsupported("WHERE CURRENT OF is not supported on synced tables")
    where_sql = f" WHERE {deparse(where)}" if where is not None else ""
    with_sql = _with_sql(statement)
    with_sql = f"{with_sql[:-1]}, " if with_sql else "WITH "
    id_key = quote_literal(id_column)
    return (
        f"{with_sql}{OLD_ROWS} AS MATERIALIZED (SELECT pg_catalog.to_jsonb({ref}) AS image "
        f"FROM {', '.join(from_items)}{where_sql} FOR UPDATE OF {ref}) "
        f"SELECT (SELECT pg_catalog.jsonb_agg(image) FROM {OLD_ROWS}), "
        f"pg_catalog.set_config('{IDS_SETTING}', COALESCE((SELECT "
        f"pg_catalog.jsonb_agg(image OPERATOR(pg_catalog.->) {id_key}) FROM {OLD_ROWS}), "
        "'[]')::text, true)"
    )


def _check_returning_refs(
    clause: ast.ReturningClause | None, ref: str, table: SyncedTable, has_from: bool
) -> None:
    """RETURNING is re-run on the apply statement, which has only the target table."""
    if clause is None or not has_from:
        return
    allowed = {ref.strip('"'), table.name}
    for target in clause.exprs or ():
        for node in _column_refs(target):
            names = [getattr(f, "sval", None) for f in node.fields or ()]
            if len(names) > 1 and names[-2] not in allowed:
                raise Unsupported(
                    "RETURNING may only reference the synced table itself",
                    "Select the other table's columns in a separate statement.",
                )


def _plan_update(statement: ast.UpdateStmt, table: SyncedTable) -> WritePlan:
    ref, alias = _target_ref(_present(statement.relation))
    set_columns = _column_names(statement.targetList)
    _refuse_assigned(table, set_columns)
    has_from = bool(statement.fromClause)
    _check_returning_refs(statement.returningClause, ref, table, has_from)
    select_old = _old_rows_sql(statement, statement.fromClause, ref, table.id_column)
    returning = _returning_sql(_target_star(statement.returningClause, ref, has_from))
    statement.returningClause = _returning_json(ref)
    # The dry run updates exactly the locked rows; with FROM, the join still gives the
    # SET expressions their other rows, and the executor checks it found them all.
    locked = _parse_one(
        f"SELECT 1 WHERE {ref}.{quote_ident(table.id_column)}::text "
        f"OPERATOR(pg_catalog.=) ANY (ARRAY({LOCKED_IDS}))"
    )
    assert isinstance(locked, ast.SelectStmt)
    if has_from and statement.whereClause is not None:
        statement.whereClause = ast.BoolExpr(
            boolop=BoolExprType.AND_EXPR, args=(statement.whereClause, locked.whereClause)
        )
    else:
        statement.whereClause = locked.whereClause
    # The apply writes the client's columns and those the API and the proxy fill: the
    # dry run assigns the latter their own values, so that PostgreSQL checks the
    # role's column privileges for every column the apply will write, before the API.
    applied = [
        c
        for c in table.writable_columns
        if c != table.id_column
        and (c in set_columns or c in table.read_only or c in table.sync_columns)
    ]
    kept = [c for c in applied if c not in set_columns]
    if kept:
        same = _parse_one(
            "UPDATE t SET " + ", ".join(f"{quote_ident(c)} = {quote_ident(c)}" for c in kept)
        )
        assert isinstance(same, ast.UpdateStmt)
        statement.targetList = (*_present(statement.targetList), *_present(same.targetList))
    dry_run = deparse(statement)
    # The new rows arrive as one composite column, so that nothing the client's
    # RETURNING list names unqualified can become ambiguous.
    source = f"({SOURCE}.{SOURCE_ROW})"
    assignments = ", ".join(f"{quote_ident(c)} = {source}.{quote_ident(c)}" for c in applied)
    id_column = quote_ident(table.id_column)
    apply = (
        f"UPDATE {table.qualified}{alias} SET {assignments} "
        f"FROM (SELECT {SOURCE_ROW} FROM pg_catalog.jsonb_populate_recordset("
        f"NULL::{table.qualified}, "
        f"$1::jsonb) AS {SOURCE_ROW}) AS {SOURCE} "
        f"WHERE {ref}.{id_column} OPERATOR(pg_catalog.=) {source}.{id_column}{returning}"
    )
    return WritePlan(
        "update", table, select_old, dry_run, apply, frozenset(set_columns), rejoins=has_from
    )


def _target_star(
    clause: ast.ReturningClause | None, ref: str, has_from: bool
) -> ast.ReturningClause | None:
    """``RETURNING *`` means the target's columns only when the client's UPDATE had no
    FROM; the apply statement joins its own source, so spell it ``ref.*``."""
    if clause is None:
        return None
    for target in clause.exprs or ():
        value = target.val
        if (
            isinstance(value, ast.ColumnRef)
            and value.fields is not None
            and len(value.fields) == 1
            and isinstance(value.fields[0], ast.A_Star)
        ):
            if has_from:
                raise Unsupported(
                    "RETURNING * of an UPDATE ... FROM on a synced table is not supported",
                    "List the synced table's columns, e.g. RETURNING t.*.",
                )
            value.fields = (ast.String(sval=ref.strip('"')), ast.A_Star())
    return clause


def _plan_delete(statement: ast.DeleteStmt, table: SyncedTable) -> WritePlan:
    ref, alias = _target_ref(_present(statement.relation))
    _check_returning_refs(statement.returningClause, ref, table, bool(statement.usingClause))
    select_old = _old_rows_sql(statement, statement.usingClause, ref, table.id_column)
    if table.ends is None:
        key = f"{ref}.{quote_ident(table.id_column)}::text"
        match = "OPERATOR(pg_catalog.=) ANY (ARRAY({}))"
        keys = "SELECT pg_catalog.jsonb_array_elements_text($1::jsonb)"
    else:  # an association row is its pair of ids: $1 is [[a, b], ...]
        (first, _), (second, _) = table.ends
        key = f"({ref}.{quote_ident(first)}::text, {ref}.{quote_ident(second)}::text)"
        match = "IN ({})"
        keys = (
            "SELECT p OPERATOR(pg_catalog.->>) 0, p OPERATOR(pg_catalog.->>) 1 "
            "FROM pg_catalog.jsonb_array_elements($1::jsonb) AS p"
        )
    apply = (
        f"DELETE FROM {table.qualified}{alias} WHERE {key} {match.format(keys)}"
        f"{_returning_sql(statement.returningClause)}"
    )
    return WritePlan("delete", table, select_old, None, apply, frozenset())


def _check_association(statement: ast.Node, table: SyncedTable) -> None:
    """Association rows are created and removed, never changed (a pair is the row)."""
    if isinstance(statement, ast.UpdateStmt):
        raise Unsupported(
            f"UPDATE of the association table {table.display} is not supported",
            "Delete the association row and insert the new one.",
        )
    if isinstance(statement, ast.InsertStmt) and statement.onConflictClause is not None:
        raise Unsupported(
            f"ON CONFLICT on the association table {table.display} is not supported",
            "Insert only associations that do not exist yet.",
        )


__all__ = [
    "IDS_SETTING",
    "SOURCE",
    "SOURCE_ROW",
    "STAGE_SAVEPOINT",
    "Conflict",
    "Kind",
    "Unsupported",
    "WritePlan",
    "assigned_error",
    "deparse",
    "plan_write",
]
