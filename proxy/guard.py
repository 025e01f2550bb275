"""The guard: a trigger on every synced table that refuses any change not made by the
proxy's own write path (or by a configured sync role), whatever the parser saw.

Why: the proxy recognises a write to a synced table by reading the statement, and
SQL has many ways to write a table without naming it where the proxy looks (a
function, a DO block, a trigger on another table, a view created later, a foreign key
cascade, ``SET search_path`` and ``INSERT`` in one query string, ``TRUNCATE ...
CASCADE``). Each would leave a local-only change with no vendor call. The guard makes
PostgreSQL itself refuse them (0A000) and roll the statement back.

How the write path passes: at startup the proxy installs a random secret in
``<schema>.guard`` (readable only by the proxy's role). Before each statement of
its own that writes a synced table it sets ``writeproxy.token`` (transaction local) to
a hash of the secret, the table's oid and that statement's exact text, and clears it
before the client can send anything else; the trigger asks a SECURITY DEFINER function
whether the token matches the table and ``current_query()``. Sync tools write as a role in
``sync_roles``; logical replication and ``session_replication_role = replica`` do not
fire triggers at all.

The guard also gives the write path's dry run of an INSERT a placeholder id (the API
assigns the real one), so that PostgreSQL can check the row against the real table —
privileges, row-level security, constraints, foreign keys, triggers — before any API
call.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Sequence

import asyncpg

from proxy.guard_key import GuardKey
from proxy.journal.schema import JournalSetupError, check_schema_name, ensure_schema
from proxy.journal.schema import quote_ident as pg_quote
from proxy.wire.encodings import codec_for
from proxy.writes.tables import SyncedTable, quote_literal

#: The trigger's name: BEFORE ROW triggers fire in name order, and ``_`` sorts before
#: lower-case names, so a user's own BEFORE trigger sees the dry run's placeholder id.
TRIGGER = "_writeproxy_guard"
TRUNCATE_TRIGGER = "_writeproxy_guard_truncate"
#: The id a dry-run INSERT's rows carry; never applied, never sent.
PENDING_ID_PREFIX = "writeproxy-pending:"
TOKEN_SETTING = "writeproxy.token"
#: Sets the token for the next statement, which writes one synced table ($1: the
#: secret, $2: the table's qualified name, $3: that statement's exact text). The token
#: authorises only that text (the trigger compares it with ``current_query()``), so one
#: leaked through the client's own expressions evaluated in that statement (a NOTICE, a
#: RETURNING function) is worthless: any other text that writes the table is the
#: client's, and is either refused or goes through the write path itself.
#: The token is computed by the proxy and only the result is sent: the secret never
#: appears in a statement, where the client's own operators or functions (a
#: ``public.||`` ahead of pg_catalog's) could read it.
ROWS_SETTING = "writeproxy.rows"
SET_TOKEN_SQL = (
    f"SELECT pg_catalog.set_config('{TOKEN_SETTING}', $1, true), "
    f"pg_catalog.set_config('{ROWS_SETTING}', $2, true)"
)


CLEAR_TOKEN_SQL = (
    f"SELECT pg_catalog.set_config('{TOKEN_SETTING}', '', true), "
    f"pg_catalog.set_config('{ROWS_SETTING}', '', true)"
)
_DDL_LOCK = 0x77_72_67_75_61_72_64  # pg_advisory_xact_lock key for the guard's DDL

log = logging.getLogger(__name__)


class GuardSetupError(JournalSetupError):
    """The guard cannot be installed; the message says how to fix it."""


def _definitions(schema: str) -> list[str]:
    s = check_schema_name(schema)
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {s}.guard (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            secret text NOT NULL,
            sync_roles text[] NOT NULL DEFAULT '{{}}'
        )
        """,
        f"REVOKE ALL ON {s}.guard FROM PUBLIC",
        # Every role that writes a synced table runs the trigger, which calls into this
        # schema (the journal's tables in it stay private to the proxy's role).
        f"GRANT USAGE ON SCHEMA {s} TO PUBLIC",
        # Who is writing: 'proxy' (the write path, for this table), 'sync' (a sync
        # role), or NULL. SECURITY DEFINER so that any role can ask without reading
        # the secret; the caller's role is passed in (current_user here is the owner).
        f"""
        CREATE OR REPLACE FUNCTION {s}.guard_writer(
            token text, relid oid, role text, allowed text)
        RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog AS $fn$
            SELECT CASE
                WHEN token IS NOT NULL AND token = md5(
                    g.secret || ':' || relid::text || ':' || md5(current_query())
                    || ':' || md5(allowed)) THEN 'proxy'
                WHEN role = ANY (g.sync_roles) THEN 'sync'
            END
            FROM {s}.guard AS g
        $fn$
        """,
        f"""
        CREATE OR REPLACE FUNCTION {s}.guard_write() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
        DECLARE
            allowed text := coalesce(current_setting('{ROWS_SETTING}', true), '');
            writer text := {s}.guard_writer(
                current_setting('{TOKEN_SETTING}', true), TG_RELID, current_user::text, allowed);
            fill jsonb := '{{}}';
            i integer := 1;
        BEGIN
            -- The write path's token covers its own statement's rows only: not a write
            -- nested in a trigger, nor (in the apply) a row it is not applying — e.g.
            -- one written by a function in the client's RETURNING list.
            IF writer = 'proxy' AND (pg_trigger_depth() > 1 OR (
                    allowed <> '' AND TG_LEVEL = 'ROW' AND TG_NARGS > 0
                    AND NOT allowed::jsonb ? ((CASE WHEN TG_OP = 'DELETE'
                        THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END) ->> TG_ARGV[0]))) THEN
                writer := NULL;
            END IF;
            IF writer IS NULL THEN
                RAISE EXCEPTION USING
                    ERRCODE = '0A000',
                    MESSAGE = format(
                        '%s on the synced table %I.%I is only supported as a plain '
                        'INSERT, UPDATE or DELETE statement through writeproxy',
                        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME),
                    HINT = 'Functions, DO blocks, triggers, views, rules, foreign key '
                        'cascades and TRUNCATE would change it without the vendor API; '
                        'write the table in its own statement (sync tools: list the '
                        'role in sync_roles).';
            END IF;
            IF TG_LEVEL = 'STATEMENT' THEN
                RETURN NULL;
            ELSIF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            IF writer = 'proxy' AND TG_OP = 'INSERT' AND TG_NARGS > 0
                    AND to_jsonb(NEW) ->> TG_ARGV[0] IS NULL THEN
                -- The write path's dry run: a placeholder id, and placeholders for the
                -- NOT NULL columns the API fills (arguments: column, value, ...).
                fill := jsonb_build_object(
                    TG_ARGV[0], '{PENDING_ID_PREFIX}' || gen_random_uuid()::text);
                WHILE i + 1 < TG_NARGS LOOP
                    IF to_jsonb(NEW) ->> TG_ARGV[i] IS NULL THEN
                        fill := fill || jsonb_build_object(TG_ARGV[i], TG_ARGV[i + 1]);
                    END IF;
                    i := i + 2;
                END LOOP;
                NEW := jsonb_populate_record(NEW, fill);
            END IF;
            RETURN NEW;
        END
        $fn$
        """,
    ]


#: Placeholders for NOT NULL columns the API fills, by type (others stay NULL).
_PLACEHOLDERS = {
    "timestamp with time zone": "-infinity",
    "timestamp without time zone": "-infinity",
    "date": "-infinity",
    "text": "",
    "character varying": "",
    "numeric": "0",
    "integer": "0",
    "bigint": "0",
    "smallint": "0",
    "double precision": "0",
    "real": "0",
    "boolean": "false",
    "jsonb": "null",
    "json": "null",
}


async def _placeholder_args(conn: asyncpg.Connection, table: SyncedTable) -> list[str]:
    """The trigger's arguments: the id column, then (column, placeholder) for each NOT
    NULL column without a default that only the API or the proxy fills."""
    if table.ends is not None:
        return []
    filled = sorted({*table.read_only, *table.sync_columns} - {table.id_column})
    rows = await conn.fetch(
        "SELECT a.attname, pg_catalog.format_type(a.atttypid, NULL) AS type "
        "FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass($1) "
        "AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull "
        "AND a.attname = ANY ($2::text[])",
        table.qualified,
        filled,
    )
    args = [table.id_column]
    for row in rows:
        placeholder = _PLACEHOLDERS.get(row["type"])
        if placeholder is not None:
            args += [row["attname"], placeholder]
    return args


async def install_guard(
    conn: asyncpg.Connection,
    schema: str,
    tables: Iterable[SyncedTable],
    sync_roles: Sequence[str] = (),
    lock_timeout_ms: int = 0,
) -> GuardKey:
    """Install (or refresh) the guard on every synced table and return its key.
    Idempotent and safe to run from several proxies at once; the secret is kept
    across restarts so that proxies sharing a database agree on it."""
    s = check_schema_name(schema)
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_catalog.set_config('lock_timeout', $1, true)", str(lock_timeout_ms)
            )
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
            for statement in _definitions(schema):
                await conn.execute(statement)
            await conn.execute(
                f"INSERT INTO {s}.guard (secret, sync_roles) VALUES ($1, $2) "
                "ON CONFLICT (singleton) DO UPDATE SET sync_roles = excluded.sync_roles",
                secrets.token_hex(32),
                list(sync_roles),
            )
            for table in tables:
                args = ", ".join(quote_literal(a) for a in await _placeholder_args(conn, table))
                await conn.execute(
                    f"CREATE OR REPLACE TRIGGER {pg_quote(TRIGGER)} "
                    f"BEFORE INSERT OR UPDATE OR DELETE ON {table.qualified} "
                    f"FOR EACH ROW EXECUTE FUNCTION {s}.guard_write({args})"
                )
                await conn.execute(
                    f"CREATE OR REPLACE TRIGGER {pg_quote(TRUNCATE_TRIGGER)} "
                    f"BEFORE TRUNCATE ON {table.qualified} "
                    f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.guard_write()"
                )
                await _check_enabled(conn, table)
            secret: str = await conn.fetchval(f"SELECT secret FROM {s}.guard")
            oids = {
                table.qualified: int(
                    await conn.fetchval("SELECT pg_catalog.to_regclass($1)::oid", table.qualified)
                )
                for table in tables
            }
            encoding = str(await conn.fetchval("SHOW server_encoding"))
    except asyncpg.InsufficientPrivilegeError as exc:
        raise GuardSetupError(
            f"the proxy's role cannot install the guard trigger on the synced tables ({exc}); "
            "connect the proxy (upstream_url) as the owner of the synced tables"
        ) from None
    return GuardKey(secret, oids, codec_for(encoding) or "utf-8")


async def _check_enabled(conn: asyncpg.Connection, table: SyncedTable) -> None:
    """Verify what was installed: CREATE OR REPLACE TRIGGER enables a trigger an
    administrator had disabled, so a disabled one here means something else interfered
    (refuse to run unguarded)."""
    disabled = await conn.fetch(
        "SELECT tgname FROM pg_catalog.pg_trigger WHERE tgrelid = pg_catalog.to_regclass($1) "
        "AND tgname = ANY ($2::text[]) AND tgenabled = 'D'",
        table.qualified,
        [TRIGGER, TRUNCATE_TRIGGER],
    )
    if disabled:
        raise GuardSetupError(
            f"the guard trigger on {table.display} is disabled; enable it with "
            f"ALTER TABLE {table.qualified} ENABLE TRIGGER {pg_quote(TRIGGER)}"
        )


def is_pending_id(value: object) -> bool:
    """Whether ``value`` is the placeholder id of a dry-run INSERT's row."""
    return isinstance(value, str) and value.startswith(PENDING_ID_PREFIX)


async def unguarded(
    conn: asyncpg.Connection, schema: str, tables: Iterable[SyncedTable]
) -> list[str]:
    """The synced tables whose guard triggers are missing or disabled (e.g. the proxy's
    schema was dropped, which drops the triggers with the function)."""
    names = [table.qualified for table in tables]
    rows = await conn.fetch(
        "SELECT t.name FROM pg_catalog.unnest($1::text[]) AS t(name) WHERE "
        "(SELECT count(*) FROM pg_catalog.pg_trigger g "
        " WHERE g.tgrelid = pg_catalog.to_regclass(t.name) AND g.tgname = ANY ($2::text[]) "
        " AND g.tgenabled <> 'D') < 2",
        names,
        [TRIGGER, TRUNCATE_TRIGGER],
    )
    return [row["name"] for row in rows]


class GuardKeeper:
    """Keeps the guard installed while the proxy runs: checked with every journal
    recovery pass, installed again (waiting at most a few seconds for locks) if
    something removed it, and the executor given the secret it then holds."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        schema: str,
        tables: Sequence[SyncedTable],
        sync_roles: Sequence[str],
        on_key: Callable[[GuardKey], None],
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._tables = tables
        self._sync_roles = sync_roles
        self._on_key = on_key

    def replace_tables(self, tables: Sequence[SyncedTable]) -> None:
        self._tables = tables

    async def check(self) -> None:
        async with self._pool().acquire() as conn:
            missing = await unguarded(conn, self._schema, self._tables)
            if not missing:
                return
            log.warning(
                "the guard trigger is missing on %s: installing it again", ", ".join(missing)
            )
            await ensure_schema(conn, self._schema)  # dropped with its schema?
            key = await install_guard(
                conn, self._schema, self._tables, self._sync_roles, lock_timeout_ms=3000
            )
        self._on_key(key)
