"""What the proxy knows about each synced table: its vendor object, its columns as
PostgreSQL has them, and how columns map to vendor properties. Built once at startup
from the configuration and the upstream catalog; invalid configuration stops the
proxy before it accepts a client."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import asyncpg
from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

from proxy.connectors import ConnectorConfigError, connector_from, connector_settings
from proxy.connectors.base import ApiError, Connector
from proxy.connectors.mapping import Capabilities, MappingError, TableShape
from proxy.guard_key import GuardKey
from proxy.sql.classifier import parse_qualified_name
from proxy.writes.settings import SYNC_COLUMNS, ConnectorSettings, SyncedTableSettings


class ConfigError(ValueError):
    """The synced-table configuration does not match the database or environment."""


@dataclass(frozen=True)
class Column:
    name: str
    type_sql: str
    generated: bool = False

    @property
    def is_array(self) -> bool:
        """An array column (a multi-select property: a list at the vendor)."""
        return self.type_sql.endswith("[]")

    @property
    def is_json(self) -> bool:
        """A json/jsonb column: its value goes to the vendor as its JSON text."""
        return self.type_sql in ("json", "jsonb")


@dataclass(frozen=True)
class SyncedTable:
    schema: str
    name: str
    connector: str
    object_type: str
    id_column: str
    columns: tuple[Column, ...]
    properties: Mapping[str, str]  # column -> vendor property, for columns sent to the API
    read_only: frozenset[str]  # columns the vendor sets (filled from its answers)
    sync_columns: frozenset[str]  # _sync_* columns present in the table
    upsert_keys: frozenset[str] = frozenset()
    association: bool = False
    #: What the vendor cannot do with this object (checked before any call).
    capabilities: Capabilities = field(default_factory=Capabilities)
    #: Read-only columns whose vendor property has another name (column -> property).
    read_only_properties: Mapping[str, str] = field(default_factory=dict)
    #: Single-column unique constraints/indexes by column, named in duplicate errors.
    unique_constraints: Mapping[str, str] = field(default_factory=dict)
    #: Association tables: (column, vendor object type) of each end, e.g.
    #: (("contact_id", "contacts"), ("deal_id", "deals")).
    ends: tuple[tuple[str, str], tuple[str, str]] | None = None

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def writable_columns(self) -> tuple[str, ...]:
        """Columns an INSERT/UPDATE of the apply step may set."""
        return tuple(c.name for c in self.columns if not c.generated)

    def property_of(self, column: str) -> str | None:
        return self.properties.get(column)

    def column_of(self, prop: str) -> str | None:
        for column, mapped in self.properties.items():
            if mapped == prop:
                return column
        return None

    @property
    def vendor_columns(self) -> Mapping[str, str]:
        """Every column filled from the vendor's answer (sent or read-only)."""
        mapped = dict(self.properties)
        for column in self.read_only:
            mapped.setdefault(column, self.read_only_properties.get(column, column))
        return mapped


@dataclass
class SyncedTables:
    """All synced tables by (schema, name), plus the connector settings."""

    tables: dict[tuple[str, str], SyncedTable] = field(default_factory=dict)
    connectors: dict[str, ConnectorSettings] = field(default_factory=dict)
    #: Views and rule-bearing relations whose rules reference a synced table: a write
    #: to them would reach the synced table behind the proxy's back.
    dependents: dict[tuple[str, str], SyncedTable] = field(default_factory=dict)
    #: The guard's key (``proxy.guard``), installed by the supervisor at startup.
    guard: GuardKey = field(default_factory=GuardKey)
    #: The database the synced tables are in (the upstream URL's); in any other
    #: database on the same server, a table of the same name is an ordinary table.
    database: str = ""

    def get(self, schema: str, name: str) -> SyncedTable | None:
        return self.tables.get((schema, name))

    def dependent(self, schema: str, name: str) -> SyncedTable | None:
        return self.dependents.get((schema, name))

    @property
    def qualified_names(self) -> list[str]:
        """Every relation a write to which concerns the proxy."""
        return [f"{quote_ident(s)}.{quote_ident(n)}" for s, n in (*self.tables, *self.dependents)]

    def __bool__(self) -> bool:
        return bool(self.tables)


#: Keywords PostgreSQL's quote_identifier quotes (all but the unreserved ones).
_QUOTED_KEYWORDS = RESERVED_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS | COL_NAME_KEYWORDS


def quote_ident(name: str) -> str:
    """Quote an identifier only when PostgreSQL needs it to keep its spelling (or to
    read it as a name rather than a keyword, e.g. a column called ``order``)."""
    if (
        name
        and name.isidentifier()
        and name == name.lower()
        and name.isascii()
        and name not in _QUOTED_KEYWORDS
    ):
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A string literal that reads the same whatever ``standard_conforming_strings``
    the session has (as PostgreSQL's own quote_literal writes it)."""
    quoted = value.replace("'", "''")
    if "\\" in value:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


def split_qualified(name: str) -> tuple[str, str]:
    """``schema.table`` as PostgreSQL reads it: unquoted names fold to lower case,
    quoted ones keep their spelling and may contain dots."""
    try:
        return parse_qualified_name(name)
    except ValueError as exc:
        raise ConfigError(f"synced table {name!r} must be written as schema.table") from exc


_COLUMNS_SQL = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       a.attgenerated <> '' AS generated
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND (n.nspname = ANY($1::text[])
   OR (n.nspname || '.' || c.relname) = ANY($2::text[]))
ORDER BY n.nspname, c.relname, a.attnum
"""


_UNIQUE_SQL = """
SELECT n.nspname, c.relname, a.attname, i.relname
FROM pg_index x
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
WHERE x.indisunique AND NOT x.indisprimary AND x.indnatts = 1 AND x.indpred IS NULL
  AND (n.nspname = ANY($1::text[]) OR (n.nspname || '.' || c.relname) = ANY($2::text[]))
ORDER BY i.relname
"""

_DEPENDENTS_SQL = """
SELECT DISTINCT vn.nspname, v.relname, tn.nspname, t.relname
FROM pg_rewrite r
JOIN pg_class v ON v.oid = r.ev_class
JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE t.relkind IN ('r', 'p') AND (tn.nspname = ANY($1::text[])
   OR (tn.nspname || '.' || t.relname) = ANY($2::text[]))
"""


async def load_synced_tables(
    url: str,
    connectors: Mapping[str, ConnectorSettings],
    explicit: Iterable[SyncedTableSettings],
    environ: Mapping[str, str] | None = None,
) -> SyncedTables:
    """Read the upstream catalog, ask each table's connector how it maps to the
    vendor's object, and build the synced-table map, or raise ConfigError."""
    environ = os.environ if environ is None else environ
    explicit = list(explicit)
    validated = {}
    for name, settings in connectors.items():
        try:
            validated[name] = connector_settings(
                name, settings.kind, settings.connector_options(), environ
            )
        except ConnectorConfigError as exc:
            raise ConfigError(str(exc)) from None
    by_name = {split_qualified(entry.table): entry for entry in explicit}
    for entry in explicit:
        if entry.connector not in connectors:
            raise ConfigError(f"synced table {entry.table}: unknown connector {entry.connector!r}")
    schemas = {s.schema_name: name for name, s in connectors.items() if s.schema_name}
    conn = await asyncpg.connect(url)
    try:
        names = [f"{s}.{t}" for s, t in by_name]
        rows = await conn.fetch(_COLUMNS_SQL, list(schemas), names)
        dependent_rows = await conn.fetch(_DEPENDENTS_SQL, list(schemas), names)
        unique_rows = await conn.fetch(_UNIQUE_SQL, list(schemas), names)
    finally:
        await conn.close()
    columns: dict[tuple[str, str], list[Column]] = {}
    for schema, table, column, type_sql, generated in rows:
        columns.setdefault((schema, table), []).append(Column(column, type_sql, generated))
    uniques: dict[tuple[str, str], dict[str, str]] = {}
    for schema, name, column, constraint in unique_rows:
        uniques.setdefault((schema, name), {}).setdefault(column, constraint)
    result = SyncedTables(connectors=dict(connectors))
    for key in by_name:
        if key not in columns:
            raise ConfigError(f"synced table {key[0]}.{key[1]} does not exist upstream")
    used = {(by_name[key].connector if key in by_name else schemas[key[0]]) for key in columns}
    live = {name: connector_from(validated[name], connectors[name].kind) for name in used}
    try:
        for key, table_columns in columns.items():
            configured = by_name.get(key)
            connector = configured.connector if configured else schemas[key[0]]
            result.tables[key] = await _build_table(
                key, table_columns, connector, live[connector], configured, uniques.get(key, {})
            )
    finally:
        for instance in live.values():
            await instance.aclose()
    for schema, name, synced_schema, synced_name in dependent_rows:
        table = result.tables.get((synced_schema, synced_name))
        if table is not None and (schema, name) not in result.tables:
            result.dependents[(schema, name)] = table
    return result


async def _build_table(
    key: tuple[str, str],
    columns: list[Column],
    connector_name: str,
    connector: Connector,
    entry: SyncedTableSettings | None,
    unique_constraints: dict[str, str],
) -> SyncedTable:
    schema, name = key
    entry = entry or SyncedTableSettings(table=f"{schema}.{name}", connector=connector_name)
    names = {c.name for c in columns}
    id_column = entry.id_column
    for option in ("read_only", "local_columns"):
        for column in getattr(entry, option):
            if column not in names:
                raise ConfigError(
                    f"synced table {schema}.{name}: {option} names unknown column {column!r}"
                )
    for column in entry.columns:
        if column not in names:
            raise ConfigError(
                f"synced table {schema}.{name}: columns renames unknown column {column!r}"
            )
    sync_columns = frozenset(c for c in SYNC_COLUMNS if c in names)
    skipped = {id_column, *sync_columns, *entry.local_columns}
    shape = TableShape(
        schema=schema,
        name=name,
        columns=tuple(
            (c.name, c.type_sql) for c in columns if c.name not in skipped and not c.generated
        ),
        object=entry.object,
        renames=dict(entry.columns),
        read_only=tuple(entry.read_only),
        upsert_keys=None if entry.upsert_keys is None else tuple(entry.upsert_keys),
    )
    try:
        mapping = await connector.map_table(shape)
    except MappingError as exc:
        raise ConfigError(str(exc)) from None
    except ApiError as exc:
        raise ConfigError(
            f"synced table {schema}.{name}: connector {connector_name!r} could not describe "
            f"its object: {exc.message} ({exc.sqlstate})"
        ) from None
    if mapping.ends is None and id_column not in names:
        raise ConfigError(
            f"synced table {schema}.{name} has no id column {id_column!r} "
            "(set id_column in its [[synced_tables]] entry)"
        )
    return SyncedTable(
        schema=schema,
        name=name,
        connector=connector_name,
        object_type=mapping.object_type,
        id_column=id_column,
        columns=tuple(columns),
        properties=dict(mapping.properties),
        read_only=mapping.read_only,
        sync_columns=sync_columns,
        upsert_keys=mapping.upsert_keys,
        association=mapping.ends is not None,
        unique_constraints=unique_constraints,
        ends=mapping.ends,
        capabilities=mapping.capabilities,
        read_only_properties=dict(mapping.read_only_properties),
    )
