"""The journal's tables in the upstream database, created (and later migrated) by the
proxy itself at startup, in a schema of their own (default ``writeproxy``).

``meta`` holds the schema version; ``ensure_schema`` is idempotent, safe to run from
several proxies at once (an advisory lock serialises the DDL), and needs no privilege
beyond using the tables once they exist at the current version. When the proxy's role
cannot create them, it raises ``JournalSetupError`` naming the privilege and the
one-time fix.
"""

from __future__ import annotations

import re

import asyncpg

from .model import OPEN_STATES, EntryState

DEFAULT_SCHEMA = "writeproxy"
SCHEMA_VERSION = 2
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: pg_advisory_xact_lock key serialising journal DDL across proxies (any constant).
_DDL_LOCK = 0x77_72_69_74_65_70_72


class JournalSetupError(RuntimeError):
    """The journal cannot be created or used; the message says how to fix it."""


def check_schema_name(name: str) -> str:
    """A plain lower-case SQL identifier (it is spliced into the journal's SQL)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(
            f"journal schema must be a lower-case identifier (letters, digits, _), got {name!r}"
        )
    return name


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _states(states: frozenset[EntryState] | list[EntryState]) -> str:
    return ", ".join(f"'{s.value}'" for s in sorted(states))


def migrations(schema: str) -> dict[int, list[str]]:
    """DDL per version; each step is idempotent (IF NOT EXISTS)."""
    s = check_schema_name(schema)
    operations = "'create', 'update', 'upsert', 'archive', 'associate', 'dissociate'"
    return {
        1: [
            f"""
            CREATE TABLE IF NOT EXISTS {s}.journal (
                id bigserial PRIMARY KEY,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                xid xid8 NOT NULL,
                database text NOT NULL DEFAULT current_database(),
                connector text NOT NULL,
                object_type text NOT NULL,
                operation text NOT NULL CHECK (operation IN ({operations})),
                call_id uuid NOT NULL UNIQUE,
                inputs jsonb NOT NULL,
                previous jsonb,
                lookup_property text,
                results jsonb,
                state text NOT NULL DEFAULT 'intent'
                    CHECK (state IN ({_states(list(EntryState))})),
                rolled_back boolean NOT NULL DEFAULT false,
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                last_error text,
                claimed_by text,
                claimed_until timestamptz
            )
            """,
            f"""
            CREATE INDEX IF NOT EXISTS journal_open ON {s}.journal (database, next_attempt_at)
                WHERE state IN ({_states(OPEN_STATES)})
            """,
            f"""
            COMMENT ON TABLE {s}.journal IS
                'writeproxy: vendor API calls made inside client transactions, '
                'resolved by pg_xact_status(xid); see writeproxy journal list'
            """,
        ],
        # The shared vendor rate budget (rate_limit_shared): one rolling window per
        # vendor account for every worker and replica of the proxy.
        2: [
            f"""
            CREATE TABLE IF NOT EXISTS {s}.vendor_requests (
                id bigserial PRIMARY KEY,
                account text NOT NULL,
                at timestamptz NOT NULL
            )
            """,
            f"CREATE INDEX IF NOT EXISTS vendor_requests_window ON {s}.vendor_requests "
            "(account, at)",
            f"""
            CREATE OR REPLACE FUNCTION {s}.take_vendor_slot(
                p_account text, p_max integer, p_interval_s float8, OUT slot bigint,
                OUT wait_s float8)
            LANGUAGE plpgsql AS $fn$
            DECLARE
                now_at timestamptz := clock_timestamp();
                used integer;
                oldest timestamptz;
            BEGIN
                -- One taker per account at a time (held until the caller's statement's
                -- transaction ends: the slot is counted before anyone else looks).
                PERFORM pg_advisory_xact_lock(hashtextextended('writeproxy rate ' || p_account, 0));
                DELETE FROM {s}.vendor_requests r
                WHERE r.account = p_account
                  AND r.at <= now_at - make_interval(secs => p_interval_s);
                SELECT count(*), min(r.at) INTO used, oldest
                FROM {s}.vendor_requests r WHERE r.account = p_account;
                IF used < p_max THEN
                    -- Until its answer, a request's slot lies one window ahead (so it
                    -- does not expire while in flight, nor stay for ever if its process
                    -- dies); the answer moves it to the answer's time.
                    INSERT INTO {s}.vendor_requests (account, at)
                    VALUES (p_account, now_at + make_interval(secs => p_interval_s))
                    RETURNING id INTO slot;
                    wait_s := 0;
                ELSE
                    slot := NULL;
                    wait_s := GREATEST(
                        extract(epoch FROM oldest + make_interval(secs => p_interval_s)
                                - now_at)::float8, 0);
                END IF;
            END
            $fn$
            """,
        ],
    }


async def installed_version(conn: asyncpg.Connection, schema: str) -> int | None:
    """The journal schema's version, or None when it is not there yet."""
    s = check_schema_name(schema)
    try:
        value = await conn.fetchval(f"SELECT value FROM {s}.meta WHERE key = 'schema_version'")
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return None
    except asyncpg.InsufficientPrivilegeError as exc:
        raise await _setup_error(conn, schema, exc) from None
    return int(value) if value is not None else None


async def ensure_schema(conn: asyncpg.Connection, schema: str = DEFAULT_SCHEMA) -> int:
    """Create or migrate the journal schema; returns its version."""
    s = check_schema_name(schema)
    version = await installed_version(conn, schema)
    if version is not None and version > SCHEMA_VERSION:
        raise JournalSetupError(
            f"the journal schema {s} is at version {version}, newer than this proxy "
            f"understands ({SCHEMA_VERSION}): upgrade writeproxy"
        )
    if version == SCHEMA_VERSION:
        await _check_usable(conn, schema)
        return version
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
            # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
            # schema exists (e.g. created by an administrator): ask first.
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema
            ):
                await conn.execute(f"CREATE SCHEMA {s}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text NOT NULL)"
            )
            current = await conn.fetchval(
                f"SELECT value::int FROM {s}.meta WHERE key = 'schema_version'"
            )
            for step, statements in sorted(migrations(schema).items()):
                if current is not None and step <= current:
                    continue
                for statement in statements:
                    await conn.execute(statement)
            await conn.execute(
                f"INSERT INTO {s}.meta VALUES ('schema_version', $1) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                str(SCHEMA_VERSION),
            )
    except asyncpg.InsufficientPrivilegeError as exc:
        raise await _setup_error(conn, schema, exc) from None
    return SCHEMA_VERSION


async def _check_usable(conn: asyncpg.Connection, schema: str) -> None:
    s = check_schema_name(schema)
    # Each privilege on its own: a list asks whether *any* of them is held.
    usable = await conn.fetchval(
        """
        SELECT bool_and(has_table_privilege($1, p)) AND has_sequence_privilege($2, 'USAGE')
        FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p
        """,
        f"{s}.journal",
        f"{s}.journal_id_seq",
    )
    if not usable:
        raise await _setup_error(conn, schema, None)


async def _setup_error(
    conn: asyncpg.Connection, schema: str, cause: BaseException | None
) -> JournalSetupError:
    """Name the missing privilege and the one-time fix."""
    row = await conn.fetchrow(
        """
        SELECT current_database() AS db, current_user AS role, n.oid IS NOT NULL AS exists,
               COALESCE(has_schema_privilege(n.oid, 'USAGE'), false) AS usage,
               COALESCE(has_schema_privilege(n.oid, 'CREATE'), false) AS create,
               EXISTS (SELECT 1 FROM pg_class c
                       WHERE c.relnamespace = n.oid AND c.relname = 'journal') AS tables
        FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = $1
        """,
        schema,
    )
    db, role, s = quote_ident(row["db"]), quote_ident(row["role"]), quote_ident(schema)
    why = f" ({cause})" if cause is not None else ""
    fix = "Fix it once, as an administrator:"
    if not row["exists"]:
        return JournalSetupError(
            f"writeproxy cannot create its journal schema {s} in database {db}: role "
            f"{role} lacks the CREATE privilege on the database{why}. {fix} "
            f"GRANT CREATE ON DATABASE {db} TO {role}; "
            f"or create the schema and let the proxy use it: CREATE SCHEMA {s}; "
            f"GRANT USAGE, CREATE ON SCHEMA {s} TO {role};"
        )
    if row["tables"]:  # created by another role: the proxy only needs to use them
        return JournalSetupError(
            f"writeproxy cannot use its journal tables in schema {s} of database {db}: "
            f"role {role} lacks privileges on them{why}. {fix} "
            f"GRANT USAGE ON SCHEMA {s} TO {role}; "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {role}; "
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {role};"
        )
    return JournalSetupError(
        f"writeproxy cannot create its journal tables in schema {s} of database {db}: "
        f"role {role} lacks the USAGE and CREATE privileges on the schema{why}. {fix} "
        f"GRANT USAGE, CREATE ON SCHEMA {s} TO {role};"
    )


__all__ = [
    "DEFAULT_SCHEMA",
    "SCHEMA_VERSION",
    "JournalSetupError",
    "check_schema_name",
    "ensure_schema",
    "installed_version",
    "migrations",
    "quote_ident",
]
