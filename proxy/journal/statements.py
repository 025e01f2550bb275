"""The journal's SQL text, one schema's worth (``_Statements``).

Kept apart from ``store`` so the ``Journal`` methods read as Python while the long
statement texts they run (and the state lists spliced into them) live together.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import OPEN_STATES, PURGEABLE_STATES, EntryState


class _Statements:
    """The journal's SQL for one schema (built once; asyncpg prepares each)."""

    def __init__(self, schema: str) -> None:
        j = f"{schema}.journal"
        open_states = _array(OPEN_STATES)
        self.record_intent = f"""
            INSERT INTO {j} (xid, connector, object_type, operation, call_id, inputs,
                             previous, lookup_property, claimed_by, claimed_until)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10))
            RETURNING id"""
        # Mirrors model.late_outcome.
        reopen = "($2::text = 'applied' AND state IN ('compensated', 'conflict', 'compensating'))"
        self.record_outcome = f"""
            UPDATE {j} SET
                state = CASE WHEN state = 'intent' THEN $2::text
                             WHEN {reopen} THEN 'compensating' ELSE state END,
                results = CASE WHEN state = 'intent' OR {reopen} THEN $3::jsonb
                               ELSE results END,
                last_error = CASE WHEN state = 'intent' THEN $4::text ELSE last_error END,
                claimed_by = CASE WHEN state = 'intent' THEN NULL ELSE claimed_by END,
                claimed_until = CASE WHEN state = 'intent' THEN NULL ELSE claimed_until END,
                next_attempt_at = now(),
                updated_at = now()
            WHERE id = $1
            RETURNING state"""
        self.mark_rolled_back = f"""
            UPDATE {j} SET rolled_back = true, next_attempt_at = now(), updated_at = now()
            WHERE id = ANY($1::bigint[]) AND NOT rolled_back"""
        self.xact_status = "SELECT x, pg_xact_status(x) FROM unnest($1::xid8[]) AS x"
        # Objects are named by id in a call's results (creates, upserts: the whole
        # object) or its inputs (updates: the properties they sent; archives and
        # associations' "from"/"to": the whole object, properties NULL).
        self.later_writers = f"""
            SELECT DISTINCT j.xid::text AS xid, o.object_id, o.properties, j.rolled_back,
                   j.state = ANY({open_states}) AS open
            FROM {j} AS j,
                 LATERAL (
                     SELECT r ->> 'id' AS object_id, NULL::text[] AS properties
                     FROM jsonb_array_elements(COALESCE(j.results, '[]'::jsonb)) AS r
                     WHERE jsonb_typeof(r) = 'object' AND j.operation IN ('create', 'upsert')
                     UNION ALL
                     SELECT i ->> 'id',
                            CASE WHEN j.operation = 'update'
                                  AND jsonb_typeof(i -> 'properties') = 'object'
                                 THEN ARRAY(SELECT jsonb_object_keys(i -> 'properties')) END
                     FROM jsonb_array_elements(j.inputs) AS i
                 ) AS o
            WHERE j.database = current_database() AND j.connector = $1
              AND j.object_type = $2 AND j.id > $3 AND j.xid <> $5::xid8
              AND j.state NOT IN ('failed', 'compensated')
              AND o.object_id = ANY($4::text[])"""
        free = "(claimed_until IS NULL OR claimed_until < now())"
        lease = "claimed_by = $2, claimed_until = now() + make_interval(secs => $3)"
        # Only entries of the claimer's connectors: proxies with different connector
        # sets may share one journal, and an entry one cannot resolve must stay free
        # for one that can (NULL: any connector).
        mine = "($4::text[] IS NULL OR connector = ANY($4::text[]))"
        self.claim = f"""
            WITH due AS MATERIALIZED (
                SELECT id FROM {j}
                WHERE database = current_database() AND state = ANY({open_states})
                  AND next_attempt_at <= now() AND {free} AND {mine}
                ORDER BY next_attempt_at, id
                LIMIT $1
                FOR UPDATE SKIP LOCKED)
            UPDATE {j} AS j SET {lease} FROM due WHERE j.id = due.id
            RETURNING j.*"""
        self.claim_ids = f"""
            WITH due AS MATERIALIZED (
                SELECT id FROM {j}
                WHERE id = ANY($1::bigint[]) AND database = current_database()
                  AND state = ANY({open_states}) AND {free} AND {mine}
                  AND (attempts = 0 OR next_attempt_at <= now())
                FOR UPDATE SKIP LOCKED)
            UPDATE {j} AS j SET {lease} FROM due WHERE j.id = due.id
            RETURNING j.*"""
        # Archives of these objects by other transactions that were (or may yet be)
        # sent: not recorded as never sent ('failed') or found not archived
        # ('compensated'), and not of a transaction that rolled back before sending.
        self.archiving = f"""
            SELECT i ->> 'id', j.id FROM {j} AS j,
                LATERAL jsonb_array_elements(j.inputs) AS i
            WHERE j.database = current_database() AND j.connector = $1
              AND j.object_type = $2 AND j.operation = 'archive' AND j.xid <> $4::xid8
              AND j.state NOT IN ('failed', 'compensated')
              -- An archive that landed long ago cannot be racing this statement: the
              -- vendor matching the object now means it was restored since.
              AND (j.state <> 'committed' OR j.updated_at > now() - interval '10 minutes')
              AND i ->> 'id' = ANY($3::text[])"""
        self.known_ids = f"""
            SELECT DISTINCT r->>'id' FROM {j} AS j,
                LATERAL jsonb_array_elements(
                    CASE WHEN jsonb_typeof(j.results) = 'array' THEN j.results END) AS r
            WHERE j.connector = $1 AND j.object_type = $2 AND j.id <> $3
              AND jsonb_typeof(r) = 'object' AND r->>'id' = ANY($4::text[])"""
        self.count_open = f"""
            SELECT state, count(*) FROM {j}
            WHERE database = current_database() AND state = ANY({open_states})
            GROUP BY state"""
        self.unowned = f"""
            SELECT connector, count(*) FROM {j}
            WHERE database = current_database() AND state = ANY({open_states})
              AND NOT (connector = ANY($1::text[]))
              -- due for that long and nobody took it (a proxy that has the connector
              -- moves next_attempt_at on each look, even while it waits)
              AND next_attempt_at < now() - make_interval(secs => $2)
            GROUP BY connector ORDER BY connector"""
        self.closed_ids = f"""
            SELECT id FROM {j}
            WHERE id = ANY($1::bigint[]) AND NOT (state = ANY({open_states}))"""
        # ``decide``'s DONE, in one statement: an answered call (not rolled back to a
        # savepoint) of a transaction PostgreSQL says committed, held by nobody.
        self.settle_committed = f"""
            UPDATE {j} SET state = 'committed', claimed_by = NULL, claimed_until = NULL,
                updated_at = now()
            WHERE id = ANY($1::bigint[]) AND database = current_database()
              AND state = 'applied' AND NOT rolled_back AND {free}
              AND connector = ANY($2::text[])
              AND pg_catalog.pg_xact_status(xid) = 'committed'
            RETURNING id"""
        self.release = f"""
            UPDATE {j} SET claimed_by = NULL, claimed_until = NULL,
                next_attempt_at = now() + make_interval(secs => $3)
            WHERE id = ANY($1::bigint[]) AND claimed_by = $2"""
        self.settle = f"""
            UPDATE {j} SET state = $4, results = COALESCE($5::jsonb, results),
                last_error = $6, attempts = attempts + CASE WHEN $7 THEN 1 ELSE 0 END,
                next_attempt_at = now() + make_interval(secs => $8),
                claimed_by = NULL, claimed_until = NULL, updated_at = now()
            WHERE id = $1 AND claimed_by = $2 AND state = $3"""
        self.get = f"SELECT * FROM {j} WHERE id = $1"
        self.list = f"""
            SELECT * FROM {j}
            WHERE database = current_database()
              AND ($1::text[] IS NULL OR state = ANY($1::text[]))
            ORDER BY id DESC LIMIT $2"""
        self.retry = f"""
            UPDATE {j} SET
                state = CASE WHEN state = 'conflict' THEN 'compensating' ELSE state END,
                attempts = 0, next_attempt_at = now(), updated_at = now()
            WHERE id = $1 AND state = ANY({_array(OPEN_STATES | {EntryState.CONFLICT})})
            RETURNING *"""
        self.purge = f"""
            DELETE FROM {j}
            WHERE database = current_database() AND state = ANY({_array(PURGEABLE_STATES)})
              AND updated_at < now() - $1::interval"""


def _array(states: Iterable[EntryState]) -> str:
    return "ARRAY[" + ", ".join(f"'{s.value}'" for s in sorted(states)) + "]::text[]"
