"""Decide, cheaply, whether SQL text may write to (or alter) a synced table.

This runs for every Query and Parse message, so it is built for the pass-through case
(DESIGN 4.1): an exact-text cache; then a substring prefilter that clears almost every
statement without parsing; only then pglast's JSON parse tree (building pglast's Python
AST costs ~10x more). The classifier never sees the session's search_path, so an
unqualified name that matches a synced table is reported with ``schema=None`` for the
caller to resolve with Postgres.

Writes it cannot see because the text does not name the table: through views, rules,
triggers, functions, ``DO`` blocks or ``dblink``; SQL-level ``EXECUTE name`` (the caller
maps it to the targets reported for ``PREPARE name``); ``DROP OWNED``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from pglast.parser import ParseError, parse_sql_json

__all__ = [
    "PARSE_ERROR",
    "PASSTHROUGH",
    "Action",
    "Classification",
    "SyncedTarget",
    "WriteClassifier",
    "parse_qualified_name",
]

Action = Literal[
    "insert",
    "update",
    "delete",
    "merge",
    "truncate",
    "copy_from",
    "alter",
    "drop",
    "other_ddl",
]
Node = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SyncedTarget:
    """A synced table that a statement may write to or change.

    ``action`` is the statement kind: DML, ``copy_from``, ``alter`` (ALTER TABLE, RENAME,
    SET SCHEMA, ATTACH/DETACH PARTITION, ALTER SCHEMA ... RENAME), ``drop`` (also DROP
    SCHEMA), or ``other_ddl``: DDL that changes how writes to the table behave without
    altering it (CREATE/DROP TRIGGER, RULE, POLICY on it; ALTER POLICY; tables inheriting
    from it or partitions of it; rules and SQL function bodies that would write it later).
    ``COMMENT``, ``GRANT``, indexes and foreign keys are not targets. A write inside
    ``PREPARE name AS ...`` is reported with its own action although it runs at
    ``EXECUTE``; ``EXPLAIN ANALYZE`` reports the write it runs, plain ``EXPLAIN`` nothing.
    """

    schema: str | None  # None: named unqualified, the caller resolves it via search_path
    name: str  # as Postgres folds it: unquoted -> lower case, quoted -> exact
    action: Action


@dataclass(frozen=True, slots=True)
class Classification:
    """Every synced target of one SQL text (which may hold several statements)."""

    targets: tuple[SyncedTarget, ...]
    statement_count: int  # 0 for empty text; -1 when not parsed (prefilter miss)
    parse_error: bool = False  # pass through: Postgres reports the error itself

    @property
    def passthrough(self) -> bool:
        """No synced target: forward the message unchanged."""
        return not self.targets


PASSTHROUGH: Final = Classification(targets=(), statement_count=-1)
PARSE_ERROR: Final = Classification(targets=(), statement_count=-1, parse_error=True)

# Longer texts (bulk VALUES lists) are rarely repeated: caching them would only pin memory.
_MAX_CACHED_CHARS: Final = 8192
# Identifiers written as U&"\0063ontact" need not contain the name's characters at all.
_UNICODE_IDENTIFIER: Final = 'u&"'
_SURROGATES: Final = re.compile("[\ud800-\udfff]")
_NAMEDATALEN: Final = 64
_IDENTIFIER: Final = r'(?:"((?:[^"]|"")+)"|([A-Za-z_\x80-\U0010ffff][\w$\x80-\U0010ffff]*))'
_QUALIFIED_NAME: Final = re.compile(rf"\s*{_IDENTIFIER}\s*\.\s*{_IDENTIFIER}\s*")


def parse_qualified_name(text: str) -> tuple[str, str]:
    """``'hubspot.contact'`` or ``'"Weird".tbl'`` -> (schema, table) as Postgres folds them."""
    match = _QUALIFIED_NAME.fullmatch(text)
    if match is None:
        raise ValueError(f"expected a schema-qualified table name, got {text!r}")
    schema = _identifier(*match.group(1, 2))
    name = _identifier(*match.group(3, 4))
    if max(len(schema.encode()), len(name.encode())) >= _NAMEDATALEN:
        raise ValueError(f"identifier longer than {_NAMEDATALEN - 1} bytes in {text!r}")
    return schema, name


def _identifier(quoted: str | None, unquoted: str) -> str:
    """Postgres's value of an identifier; unquoted ones fold ASCII letters only (UTF-8)."""
    if quoted is not None:
        return quoted.replace('""', '"')
    return "".join(c.lower() if c.isascii() else c for c in unquoted)


class WriteClassifier:
    """Classifies SQL texts against one set of synced tables; shared by all sessions."""

    def __init__(self, synced_tables: Iterable[str], cache_size: int = 10_000) -> None:
        tables = frozenset(parse_qualified_name(text) for text in synced_tables)
        self._tables = tables
        self._names = frozenset(name for _, name in tables)
        self._by_schema: dict[str, list[str]] = {}
        for schema, name in sorted(tables):
            self._by_schema.setdefault(schema, []).append(name)
        # Schema names too, so DROP SCHEMA / ALTER SCHEMA ... RENAME get parsed. Quotes in
        # a name are doubled inside a quoted identifier; casefold() (unlike lower()) is
        # context-free, so a name in the text stays a substring of the folded text.
        spellings = {*self._names, *self._by_schema}
        needles = {s.casefold() for s in spellings} | {
            s.replace('"', '""').casefold() for s in spellings
        }
        self._needles = (*sorted(needles), _UNICODE_IDENTIFIER)
        self._cache: dict[str, Classification] = {}
        self._cache_size = cache_size

    def classify(self, sql: str) -> Classification:
        """Classify one Query/Parse text; repeated texts return the identical object."""
        cached = self._cache.get(sql)
        if cached is not None:
            return cached
        result = self._classify(sql)
        if len(sql) <= _MAX_CACHED_CHARS:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()  # cheaper than LRU bookkeeping on every hit
            self._cache[sql] = result
        return result

    def _classify(self, sql: str) -> Classification:
        folded = sql.casefold()
        for needle in self._needles:  # a plain loop: twice as fast as any() over a genexpr
            if needle in folded:
                break
        else:
            return PASSTHROUGH
        tree = _parse(sql)
        if tree is None:
            return PARSE_ERROR
        count = tree.count('"stmt":')  # only RawStmt has a "stmt" field
        if not _has_target_node(tree):
            return Classification(targets=(), statement_count=count)
        walk = _Walk(self._tables, self._names, self._by_schema)
        walk.node(json.loads(tree)["stmts"])
        return Classification(targets=tuple(walk.found), statement_count=count)


def _parse(sql: str) -> str | None:
    """pglast's JSON parse tree, or None when Postgres would report a syntax error."""
    try:
        try:
            return parse_sql_json(sql)
        except UnicodeEncodeError:
            # Lone surrogates: bytes of a non-UTF-8 client encoding decoded losslessly
            # with surrogateescape. They are never ASCII, so they cannot change the tokens.
            return parse_sql_json(_SURROGATES.sub("\ufffd", sql))
    except ParseError:
        return None


def _has_target_node(tree: str) -> bool:
    """Scan the JSON text for a ``"<X>Stmt"`` key in _TARGET_NODES.

    Reads of synced tables are the usual prefilter hits, and json.loads would cost more
    than the parse itself. A node key always appears as ``"XStmt"``; inside a JSON string
    every quote is escaped, so a string value can only cause a false positive.
    """
    end = tree.find('Stmt"')
    while end != -1:
        if tree[tree.rfind('"', 0, end) + 1 : end] in _TARGET_NODES:
            return True
        end = tree.find('Stmt"', end + 5)
    return False


class _Walk:
    """One walk over a parse tree, collecting synced targets in order, without repeats."""

    __slots__ = ("_by_schema", "_deferred", "_names", "_tables", "found")

    def __init__(
        self,
        tables: frozenset[tuple[str, str]],
        names: frozenset[str],
        by_schema: dict[str, list[str]],
    ) -> None:
        self._tables = tables
        self._names = names
        self._by_schema = by_schema
        self._deferred = False
        self.found: dict[SyncedTarget, None] = {}

    def node(self, node: object) -> None:
        """Visit every node, wherever statements nest (CTEs, EXPLAIN, PREPARE, COPY, ...)."""
        if isinstance(node, dict):
            for key, value in node.items():
                visit = _VISITORS.get(key)
                if visit is not None:
                    visit(self, value)
                elif isinstance(value, (dict, list)):
                    self.node(value)
        elif isinstance(node, list):
            for item in node:
                self.node(item)

    def definition(self, body: object) -> None:
        """Walk a stored body (rule actions, SQL function): it writes later, as other_ddl."""
        outer, self._deferred = self._deferred, True
        self.node(body)
        self._deferred = outer

    def relation(self, range_var: Node | None, action: Action) -> None:
        if range_var is not None:
            self._add(range_var.get("schemaname"), range_var["relname"], action)

    def names(self, items: list[Node], action: Action) -> None:
        """A name list such as DropStmt's ``[catalog,] [schema,] name``."""
        *qualifiers, name = (item["String"]["sval"] for item in items)
        self._add(qualifiers[-1] if qualifiers else None, name, action)

    def schema(self, schema: str, action: Action) -> None:
        for name in self._by_schema.get(schema, ()):
            self._add(schema, name, action)

    def _add(self, schema: str | None, name: str, action: Action) -> None:
        synced = name in self._names if schema is None else (schema, name) in self._tables
        if synced:
            self.found[SyncedTarget(schema, name, "other_ddl" if self._deferred else action)] = None


def _dml(action: Action) -> Callable[[_Walk, Node], None]:
    def visit(walk: _Walk, stmt: Node) -> None:
        walk.relation(stmt["relation"], action)
        walk.node(stmt)  # data-modifying CTEs

    return visit


def _truncate(walk: _Walk, stmt: Node) -> None:
    for item in stmt["relations"]:
        walk.relation(item["RangeVar"], "truncate")


def _copy(walk: _Walk, stmt: Node) -> None:
    if stmt.get("is_from"):
        walk.relation(stmt.get("relation"), "copy_from")
    walk.node(stmt.get("query"))  # COPY (DELETE ... RETURNING *) TO STDOUT


def _explain(walk: _Walk, stmt: Node) -> None:
    """Only EXPLAIN ANALYZE runs the statement; anything but an explicit false runs it."""
    for option in stmt.get("options", ()):
        elem = option["DefElem"]
        if elem["defname"] == "analyze" and not _is_false(elem.get("arg")):
            walk.node(stmt["query"])
            return


def _is_false(arg: Node | None) -> bool:
    """Postgres's defGetBoolean: 0, 'false', 'off' (the JSON omits a zero ival)."""
    if arg is None:
        return False
    if "Integer" in arg:
        return not arg["Integer"].get("ival")
    return "String" in arg and arg["String"]["sval"].lower() in ("false", "off")


def _alter_table(walk: _Walk, stmt: Node) -> None:
    walk.relation(stmt["relation"], "alter")
    for cmd in stmt.get("cmds", ()):
        definition = cmd["AlterTableCmd"].get("def", {})
        if "PartitionCmd" in definition:  # ATTACH/DETACH PARTITION synced
            walk.relation(definition["PartitionCmd"]["name"], "alter")
        elif "RangeVar" in definition:  # [NO] INHERIT synced: it gains or loses a child
            walk.relation(definition["RangeVar"], "other_ddl")


def _rename(walk: _Walk, stmt: Node) -> None:
    if stmt.get("renameType") == "OBJECT_SCHEMA":
        walk.schema(stmt["subname"], "alter")
    else:  # table, column, constraint, trigger, rule, policy of a relation
        walk.relation(stmt.get("relation"), "alter")


_DROPPED_RELATIONS: Final = frozenset(
    {"OBJECT_TABLE", "OBJECT_FOREIGN_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW"}
)
_DROPPED_FROM_RELATION: Final = frozenset({"OBJECT_TRIGGER", "OBJECT_RULE", "OBJECT_POLICY"})


def _drop(walk: _Walk, stmt: Node) -> None:
    kind = stmt.get("removeType")
    for obj in stmt["objects"]:
        if kind == "OBJECT_SCHEMA":
            walk.schema(obj["String"]["sval"], "drop")
        elif kind in _DROPPED_RELATIONS:
            walk.names(obj["List"]["items"], "drop")
        elif kind in _DROPPED_FROM_RELATION:  # [schema,] table, trigger
            walk.names(obj["List"]["items"][:-1], "other_ddl")


def _rule(walk: _Walk, stmt: Node) -> None:
    walk.relation(stmt["relation"], "other_ddl")
    walk.definition(stmt.get("actions"))


def _create(walk: _Walk, stmt: Node) -> None:
    for parent in stmt.get("inhRelations", ()):  # INHERITS (synced) / PARTITION OF synced
        walk.relation(parent["RangeVar"], "other_ddl")


_VISITORS: Final[dict[str, Callable[[_Walk, Node], None]]] = {
    "InsertStmt": _dml("insert"),
    "UpdateStmt": _dml("update"),
    "DeleteStmt": _dml("delete"),
    "MergeStmt": _dml("merge"),
    "TruncateStmt": _truncate,
    "CopyStmt": _copy,
    "ExplainStmt": _explain,
    "AlterTableStmt": _alter_table,
    "RenameStmt": _rename,
    "AlterObjectSchemaStmt": lambda walk, stmt: walk.relation(stmt.get("relation"), "alter"),
    "DropStmt": _drop,
    "CreateTrigStmt": lambda walk, stmt: walk.relation(stmt["relation"], "other_ddl"),
    "RuleStmt": _rule,
    "CreatePolicyStmt": lambda walk, stmt: walk.relation(stmt["table"], "other_ddl"),
    "AlterPolicyStmt": lambda walk, stmt: walk.relation(stmt["table"], "other_ddl"),
    "CreateStmt": _create,
    "CreateForeignTableStmt": lambda walk, stmt: _create(walk, stmt["base"]),
    "CreateFunctionStmt": lambda walk, stmt: walk.definition(stmt.get("sql_body")),
}
# "...Stmt" nodes whose visitor can report a target; EXPLAIN and CREATE FUNCTION only
# recurse into nodes that are in this set themselves.
_TARGET_NODES: Final = frozenset(
    key.removesuffix("Stmt")
    for key in _VISITORS
    if key not in ("ExplainStmt", "CreateFunctionStmt")
)
