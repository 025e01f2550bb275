"""What GUI clients read from the catalogue (psql's backslash commands, the
information_schema and pg_catalog queries of TablePlus, DBeaver, Postico) is the same
through the proxy as directly, on the database with synced tables."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.support import ProxyProcess

SCHEMA = "compat_catalog"

#: Objects with comments, keys, indexes, a view, a function and an enum beside the
#: synced tables; created directly and dropped after the module.
FIXTURE_SQL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
COMMENT ON SCHEMA {SCHEMA} IS 'compatibility fixtures';
CREATE TYPE {SCHEMA}.stage AS ENUM ('lead', 'customer');
CREATE TABLE {SCHEMA}.account (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name varchar(80) NOT NULL,
    stage {SCHEMA}.stage DEFAULT 'lead',
    contact_id text REFERENCES hubspot.contact (id) ON DELETE SET NULL,
    user_id integer REFERENCES public.users (id),
    tags text[] DEFAULT '{{}}',
    UNIQUE (name, user_id)
);
COMMENT ON TABLE {SCHEMA}.account IS 'an account';
COMMENT ON COLUMN {SCHEMA}.account.name IS 'display name';
CREATE INDEX account_lower_name ON {SCHEMA}.account (lower(name)) WHERE stage = 'customer';
CREATE VIEW {SCHEMA}.customers AS SELECT id, name FROM {SCHEMA}.account WHERE stage = 'customer';
CREATE FUNCTION {SCHEMA}.shout(t text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT upper(t)';
COMMENT ON FUNCTION {SCHEMA}.shout(text) IS 'louder';
CREATE SEQUENCE {SCHEMA}.invoice_no START 1000;
"""

PSQL_COMMANDS = [
    r"\d+ hubspot.contact",
    r"\d hubspot.*",
    rf"\d+ {SCHEMA}.account",
    r"\dn+",
    r"\df",
    rf"\df+ {SCHEMA}.*",
    r"\dt *.*",
    r"\dv+ *.*",
    r"\di *.*",
    r"\dT+ " + SCHEMA + ".*",
    r"\dx",
    r"\l",
    r"\du",
    r"\dp hubspot.*",
    r"\dd " + SCHEMA + ".*",
]

#: Catalogue queries typical of GUI clients (their shape, reduced to stable columns:
#: nothing that autovacuum may change between the two runs, like reltuples).
CATALOG_QUERIES = {
    "server": "SELECT version(), current_database(), current_schemas(true), "
    "current_setting('server_version_num'), current_setting('search_path'), "
    "pg_catalog.pg_encoding_to_char(encoding) FROM pg_catalog.pg_database "
    "WHERE datname = current_database()",
    "schemas (DBeaver)": "SELECT n.oid, n.nspname, n.nspowner::regrole::text, d.description "
    "FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d "
    "ON d.objoid = n.oid AND d.objsubid = 0 AND d.classoid = 'pg_namespace'::regclass "
    "ORDER BY nspname",
    "tables (DBeaver)": "SELECT c.oid, c.relname, c.relkind, c.relnamespace::regnamespace::text, "
    "c.relhasindex, c.relpersistence, d.description FROM pg_catalog.pg_class c "
    "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = c.oid AND d.objsubid = 0 "
    "AND d.classoid = 'pg_class'::regclass WHERE c.relnamespace = %(ns)s::regnamespace "
    "AND c.relkind NOT IN ('i', 'I', 'c') ORDER BY c.relname",
    "columns (DBeaver)": "SELECT c.relname, a.attname, a.attnum, a.atttypid, a.atttypmod, "
    "a.attnotnull, a.attidentity, a.attgenerated, pg_catalog.format_type(a.atttypid, "
    "a.atttypmod), pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) AS def_value, "
    "dsc.description FROM pg_catalog.pg_attribute a "
    "JOIN pg_catalog.pg_class c ON a.attrelid = c.oid "
    "LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum "
    "LEFT OUTER JOIN pg_catalog.pg_description dsc ON c.oid = dsc.objoid "
    "AND a.attnum = dsc.objsubid WHERE NOT a.attisdropped AND a.attnum > 0 "
    "AND c.relnamespace = %(ns)s::regnamespace ORDER BY c.relname, a.attnum",
    "columns (TablePlus)": "SELECT table_schema, table_name, column_name, ordinal_position, "
    "column_default, is_nullable, data_type, udt_name, character_maximum_length, "
    "numeric_precision, is_identity, is_generated FROM information_schema.columns "
    "WHERE table_schema = %(ns)s ORDER BY table_name, ordinal_position",
    "primary keys": "SELECT tc.table_name, tc.constraint_name, kcu.column_name, "
    "kcu.ordinal_position FROM information_schema.table_constraints tc "
    "JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name) "
    "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = %(ns)s "
    "ORDER BY 1, 2, 4",
    "constraints (Postico)": "SELECT conrelid::regclass::text, conname, contype, "
    "pg_catalog.pg_get_constraintdef(oid, true), confrelid::regclass::text, "
    "confupdtype, confdeltype, conkey, confkey FROM pg_catalog.pg_constraint "
    "WHERE connamespace = %(ns)s::regnamespace ORDER BY 1, 2",
    "foreign keys (information_schema)": "SELECT rc.constraint_name, kcu.table_name, "
    "kcu.column_name, ccu.table_schema, ccu.table_name, ccu.column_name, rc.update_rule, "
    "rc.delete_rule FROM information_schema.referential_constraints rc "
    "JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name) "
    "JOIN information_schema.constraint_column_usage ccu "
    "USING (constraint_schema, constraint_name) WHERE rc.constraint_schema = %(ns)s "
    "ORDER BY 1, 3",
    "indexes": "SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text, "
    "i.indisunique, i.indisprimary, i.indkey::text, pg_catalog.pg_get_indexdef(i.indexrelid), "
    "pg_catalog.pg_get_expr(i.indpred, i.indrelid) FROM pg_catalog.pg_index i "
    "JOIN pg_catalog.pg_class c ON c.oid = i.indrelid "
    "WHERE c.relnamespace = %(ns)s::regnamespace ORDER BY 1",
    "pg_indexes": "SELECT tablename, indexname, indexdef FROM pg_catalog.pg_indexes "
    "WHERE schemaname = %(ns)s ORDER BY 1, 2",
    "comments": "SELECT c.relname, obj_description(c.oid, 'pg_class'), "
    "col_description(c.oid, 1), col_description(c.oid, 2) FROM pg_catalog.pg_class c "
    "WHERE c.relnamespace = %(ns)s::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1",
    "functions": "SELECT p.proname, pg_catalog.pg_get_function_arguments(p.oid), "
    "pg_catalog.pg_get_function_result(p.oid), p.prokind, l.lanname, p.provolatile, "
    "obj_description(p.oid, 'pg_proc'), pg_catalog.pg_get_functiondef(p.oid) "
    "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang "
    "WHERE p.pronamespace = %(ns)s::regnamespace ORDER BY 1",
    "types and enums": "SELECT t.typname, t.typtype, e.enumlabel, e.enumsortorder "
    "FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid "
    "WHERE t.typnamespace = %(ns)s::regnamespace ORDER BY 1, 4",
    "views": "SELECT table_name, view_definition, is_updatable FROM information_schema.views "
    "WHERE table_schema = %(ns)s ORDER BY 1",
    "privileges": "SELECT table_name, privilege_type, grantee FROM "
    "information_schema.table_privileges WHERE table_schema = %(ns)s ORDER BY 1, 2, 3",
    "sequences": "SELECT sequence_name, data_type, start_value, increment "
    "FROM information_schema.sequences WHERE sequence_schema = %(ns)s ORDER BY 1",
}


@pytest.fixture(scope="module")
def catalog(synced_proxy: ProxyProcess, synced_url: str) -> Iterator[tuple[str, str]]:
    """(direct URL, proxy URL) of the synced database with the fixture schema."""
    with psycopg.connect(synced_url, autocommit=True) as conn:
        conn.execute(FIXTURE_SQL)
    yield synced_url, synced_proxy.url(db="synced")
    with psycopg.connect(synced_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


def psql(url: str, command: str, *options: str) -> tuple[int, str, str]:
    """psql -X -A (and ``options``), with the port of ``url`` replaced by PORT."""
    done = subprocess.run(
        ["psql", "-X", "-A", *options, "-d", url, "-c", command],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PAGER": "", "PSQL_PAGER": "", "LC_ALL": "C"},
    )
    port = rf"\b{urlsplit(url).port}\b"
    return done.returncode, re.sub(port, "PORT", done.stdout), re.sub(port, "PORT", done.stderr)


@pytest.mark.parametrize("command", PSQL_COMMANDS)
def test_psql_describe_commands_match_direct(catalog: tuple[str, str], command: str) -> None:
    """With -t (tuples only) and without it: titles and footers (indexes, constraints,
    "Referenced by") are printed only without it."""
    direct_url, proxy_url = catalog
    for options in (("-t",), ()):
        direct = psql(direct_url, command, *options)
        assert psql(proxy_url, command, *options) == direct
        assert direct[0] == 0 and direct[2] == ""


def test_psql_describe_output_has_what_a_gui_shows(catalog: tuple[str, str]) -> None:
    _, proxy_url = catalog
    _, out, _ = psql(proxy_url, rf"\d+ {SCHEMA}.account")
    assert "display name" in out and "account_lower_name" in out
    assert "FOREIGN KEY (contact_id) REFERENCES hubspot.contact(id) ON DELETE SET NULL" in out
    _, out, _ = psql(proxy_url, r"\d+ hubspot.contact")
    assert '"contact_pkey" PRIMARY KEY, btree (id)' in out
    assert f'TABLE "{SCHEMA}.account" CONSTRAINT' in out  # "Referenced by"


def test_psql_conninfo_differs_only_by_port(catalog: tuple[str, str]) -> None:
    """\\conninfo names the port the client connected to: the proxy's, legitimately."""
    direct_url, proxy_url = catalog
    direct = psql(direct_url, r"\conninfo")
    assert psql(proxy_url, r"\conninfo") == direct
    assert 'port "PORT"' in direct[1]


def fetch(url: str, query: str, namespace: str, prepare: bool) -> tuple[Any, ...]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, {"ns": namespace}, prepare=prepare)
        described = [(c.name, c.type_code) for c in cur.description or ()]
        return described, cur.fetchall()


@pytest.mark.parametrize("namespace", ["hubspot", SCHEMA])
@pytest.mark.parametrize("name", list(CATALOG_QUERIES))
def test_catalog_queries_match_direct(catalog: tuple[str, str], name: str, namespace: str) -> None:
    """Each query through the extended protocol, once unnamed and once as a named
    prepared statement (psycopg prepare=True)."""
    direct_url, proxy_url = catalog
    query = CATALOG_QUERIES[name]
    direct = fetch(direct_url, query, namespace, prepare=False)
    assert direct[1] or namespace == "hubspot", f"{name}: no rows"
    for prepare in (False, True):
        assert fetch(proxy_url, query, namespace, prepare) == direct
