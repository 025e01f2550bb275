"""The small AST and SQL helpers the write planners share (``plan`` and
``plan_conflict``), and ``Unsupported``, the refusal they raise.

A module of its own so that ON CONFLICT planning can use them without importing
``plan``, which imports it (no cycle).
"""

from __future__ import annotations

from typing import TypeVar

from pglast import ast, parse_sql
from pglast.stream import RawStream

from proxy.writes.tables import SyncedTable, quote_ident

T = TypeVar("T")


class Unsupported(Exception):
    """A statement the proxy refuses (0A000) before any API call."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def deparse(node: ast.Node) -> str:
    return RawStream()(node)


def _present(value: T | None) -> T:
    """A field the parser always sets in this position (pglast types every AST field
    as optional)."""
    assert value is not None
    return value


def _parse_one(sql: str) -> ast.Node:
    """The first statement of ``sql``, which the caller knows to hold one."""
    return _present(parse_sql(sql)[0].stmt)


def _select_list(sql: str) -> tuple[ast.Node, ...]:
    """The target list of a SELECT the planner writes itself."""
    select = _parse_one(sql)
    assert isinstance(select, ast.SelectStmt)
    return _present(select.targetList)


def _target_ref(relation: ast.RangeVar) -> tuple[str, str]:
    """How SQL refers to the target row (alias or bare name), and an AS clause."""
    if relation.alias is not None:
        alias = quote_ident(_present(relation.alias.aliasname))
        return alias, f" AS {alias}"
    return quote_ident(_present(relation.relname)), ""


def _column_names(targets: tuple[ast.ResTarget, ...] | None) -> list[str]:
    return [_present(target.name) for target in targets or ()]


def _column_refs(node: object) -> list[ast.ColumnRef]:
    if isinstance(node, ast.ColumnRef):
        return [node]
    found: list[ast.ColumnRef] = []
    if isinstance(node, tuple | list):
        for item in node:
            found.extend(_column_refs(item))
    elif isinstance(node, ast.Node):
        for name in node:
            found.extend(_column_refs(getattr(node, name)))
    return found


def assigned_error(table: SyncedTable, column: str) -> Unsupported:
    """Why the client may not write ``column`` (the id, or one the API sets)."""
    if column == table.id_column:
        return Unsupported(
            f'the id column "{column}" of the synced table {table.display} '
            "is assigned by the API and cannot be written",
            "Omit the id column; RETURNING id gives the id the API assigned.",
        )
    return Unsupported(
        f"column {column!r} of the synced table {table.display} is set by the API "
        "and cannot be written",
        "Omit the column; RETURNING shows the value the API assigned.",
    )


def _refuse_assigned(table: SyncedTable, columns: list[str]) -> None:
    """UPDATE ... SET (and DO UPDATE SET) of the id or a read-only column."""
    for column in sorted(set(columns) & {table.id_column, *table.read_only}):
        raise assigned_error(table, column)
    capabilities = table.capabilities
    for column in sorted(set(columns) & capabilities.immutable):
        raise Unsupported(
            f"column {column} of the synced table {table.display} cannot be changed once "
            f"the {table.object_type} object exists",
            capabilities.immutable_hint or "Create a new row instead.",
        )
