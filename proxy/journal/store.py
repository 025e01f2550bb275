"""The durable journal: one row per vendor call made inside a client transaction, in
the upstream database, written on the proxy's own autocommit connections (never the
client's, so an entry survives the client transaction's rollback).

Every operation is one statement, prepared once per connection (asyncpg's statement
cache), so it costs one round trip. Entries are claimed with ``FOR UPDATE SKIP LOCKED``
into a lease (``claimed_by``/``claimed_until``): two proxies never work the same entry,
and a dead proxy's entries become claimable when its lease expires. Only entries of
the connected database are claimed or listed (a database copied with ``CREATE DATABASE
... TEMPLATE`` or restored elsewhere carries rows that are not its own).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import asyncpg

from proxy.connectors.base import CallOutcome, Operation, VendorCall

from .model import (
    Entry,
    EntryState,
    LaterWrite,
    Result,
    Verdict,
    outcome_of,
    results_from_json,
    results_to_json,
)
from .schema import DEFAULT_SCHEMA, check_schema_name, ensure_schema
from .statements import _Statements


def default_owner() -> str:
    """Who holds a claim: host, process and a random tag (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class JournalError(RuntimeError):
    pass


class Journal:
    def __init__(
        self,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        owner: str | None = None,
        lease_s: float = 30.0,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout: float = 10.0,
        command_timeout: float | None = 5.0,
    ) -> None:
        self.dsn = dsn
        self.schema = check_schema_name(schema)
        self.owner = owner or default_owner()
        self.lease_s = lease_s
        self._pool_args = {
            "min_size": min_size,
            "max_size": max_size,
            "timeout": connect_timeout,
            # A journal write that cannot finish (the table locked, the server stalled)
            # fails the statement before the vendor call instead of hanging it.
            "command_timeout": command_timeout,
        }
        self._pool: asyncpg.Pool | None = None
        self._sql = _Statements(self.schema)

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                init=_init_connection,
                reset=_reset_connection,
                server_settings={"application_name": "writeproxy journal"},
                **self._pool_args,
            )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def __aenter__(self) -> Journal:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise JournalError("the journal is not open")
        return self._pool

    async def ensure_schema(self) -> int:
        """Create or migrate the journal tables (``JournalSetupError`` if not allowed)."""
        async with self.pool.acquire() as conn:
            return await ensure_schema(conn, self.schema)

    # -- the write path --------------------------------------------------------------

    async def record_intent(
        self,
        call: VendorCall,
        *,
        xid: int,
        connector: str,
        previous: Mapping[str, Mapping[str, Any]] | None = None,
        lookup_property: str | None = None,
        lease_s: float | None = None,
    ) -> int:
        """Journal a call before it is sent; durable when this returns. The entry is
        leased to this proxy for ``lease_s`` (default: the journal's lease) so that no
        resolver looks it up while the call may be in flight; ``record_outcome`` ends
        the lease. Returns the entry id."""
        return int(
            await self.pool.fetchval(
                self._sql.record_intent,
                xid,
                connector,
                call.object_type,
                call.operation.value,
                call.call_id,
                [dict(item) for item in call.inputs],
                _plain(previous),
                lookup_property,
                self.owner,
                self.lease_s if lease_s is None else lease_s,
            )
        )

    async def record_outcome(
        self,
        entry_id: int,
        state: EntryState,
        results: Sequence[Result | None] | None = None,
        error: str | None = None,
    ) -> EntryState:
        """Record the call's answer (``applied``/``failed``/``unknown``); returns the
        entry's state afterwards (see ``model.late_outcome``)."""
        if state not in (EntryState.APPLIED, EntryState.FAILED, EntryState.UNKNOWN):
            raise ValueError(f"{state} is not a call outcome")
        value = await self.pool.fetchval(
            self._sql.record_outcome, entry_id, state.value, results_to_json(results), error
        )
        if value is None:
            raise JournalError(f"no journal entry {entry_id}")
        return EntryState(value)

    async def record_call_outcome(
        self, entry_id: int, call: VendorCall, outcome: CallOutcome
    ) -> EntryState:
        """``record_outcome`` from a connector's ``CallOutcome`` (``after_send``)."""
        state, results, error = outcome_of(call, outcome)
        return await self.record_outcome(entry_id, state, results, error)

    async def mark_rolled_back(self, ids: Iterable[int]) -> int:
        """The entries' statements were undone by ROLLBACK TO SAVEPOINT: compensate
        them even if the transaction commits. Returns how many were marked."""
        wanted = list(ids)
        if not wanted:
            return 0
        return _count(await self.pool.execute(self._sql.mark_rolled_back, wanted))

    # -- verdicts --------------------------------------------------------------------

    async def later_writers(
        self, entry: Entry, object_ids: Iterable[str]
    ) -> dict[str, list[LaterWrite]]:
        """For each of ``object_ids``: the other transactions' later entries that wrote
        the same object and were not failed or compensated (the entry's own transaction
        is undone as a whole, newest first), with the properties they wrote (None: the
        whole object, e.g. a create or an archive). An undo must not overwrite what
        such a write did once it committed, and must wait for the undo of one rolled
        back (that undo puts back the value this one would)."""
        wanted = sorted(set(object_ids))
        if not wanted:
            return {}
        rows = await self.pool.fetch(
            self._sql.later_writers,
            entry.connector,
            entry.object_type,
            entry.id,
            wanted,
            entry.xid,
        )
        found: dict[str, list[LaterWrite]] = {}
        for row in rows:
            written = row["properties"]
            found.setdefault(str(row["object_id"]), []).append(
                LaterWrite(
                    int(row["xid"]),
                    None if written is None else frozenset(written),
                    rolled_back=bool(row["rolled_back"]),
                    open=bool(row["open"]),
                )
            )
        return found

    async def xact_status(self, xids: Iterable[int]) -> dict[int, Verdict | None]:
        """``pg_xact_status`` of each transaction, in one query; None when PostgreSQL
        can no longer tell (too old) or never could (an id from the future)."""
        wanted = sorted(set(xids))
        if not wanted:
            return {}
        try:
            rows = await self.pool.fetch(self._sql.xact_status, wanted)
        except asyncpg.PostgresError:
            # One bad id fails the batch: ask one by one.
            return {xid: await self._one_status(xid) for xid in wanted}
        return {int(row[0]): _verdict(row[1]) for row in rows}

    async def _one_status(self, xid: int) -> Verdict | None:
        try:
            return _verdict(await self.pool.fetchval("SELECT pg_xact_status($1::xid8)", xid))
        except asyncpg.PostgresError:
            return None

    # -- resolution ------------------------------------------------------------------

    async def claim(
        self,
        limit: int,
        owner: str | None = None,
        lease_s: float | None = None,
        connectors: Collection[str] | None = None,
    ) -> list[Entry]:
        """Lease up to ``limit`` due open entries nobody holds (or whose lease
        expired), oldest due first; only those of ``connectors`` when given."""
        return await self._claim(self._sql.claim, limit, owner, lease_s, connectors)

    async def claim_ids(
        self,
        ids: Iterable[int],
        owner: str | None = None,
        lease_s: float | None = None,
        connectors: Collection[str] | None = None,
    ) -> list[Entry]:
        """Lease these open entries now (a failed compensation only once its backoff is
        over: the live path must not turn a short outage into a long backoff), unless
        someone holds them."""
        wanted = list(ids)
        if not wanted:
            return []
        return await self._claim(self._sql.claim_ids, wanted, owner, lease_s, connectors)

    async def _claim(
        self,
        sql: str,
        which: object,
        owner: str | None,
        lease_s: float | None,
        connectors: Collection[str] | None,
    ) -> list[Entry]:
        lease = self.lease_s if lease_s is None else lease_s
        names = None if connectors is None else sorted(connectors)
        rows = await self.pool.fetch(sql, which, owner or self.owner, lease, names)
        return sorted((_entry(row) for row in rows), key=lambda e: e.id)

    async def settle_committed(self, ids: Iterable[int], connectors: Collection[str]) -> list[int]:
        """Mark committed, in one statement, those of these entries that are answered
        (``applied``), not rolled back, free, of ``connectors``, and whose transaction
        committed; returns their ids (the rest needs a full resolution)."""
        wanted = list(ids)
        if not wanted:
            return []
        rows = await self.pool.fetch(self._sql.settle_committed, wanted, sorted(connectors))
        return [int(row[0]) for row in rows]

    async def unowned(self, connectors: Collection[str], older_than_s: float) -> dict[str, int]:
        """Open entries, by connector, of connectors not in ``connectors`` that nobody
        has touched for ``older_than_s`` seconds: work for a connector no proxy on this
        journal seems to have configured any more (an operator must see it)."""
        rows = await self.pool.fetch(self._sql.unowned, sorted(connectors), older_than_s)
        return {str(row[0]): int(row[1]) for row in rows}

    async def archiving(
        self, connector: str, object_type: str, ids: Sequence[str], xid: int
    ) -> dict[str, int]:
        """Of these objects, those another transaction than ``xid`` archives or has
        archived (its archive journaled, not known to be unsent): object id -> entry."""
        wanted = list(ids)
        if not wanted:
            return {}
        rows = await self.pool.fetch(self._sql.archiving, connector, object_type, wanted, xid)
        return {str(row[0]): int(row[1]) for row in rows}

    async def known_ids(
        self, entry: Entry, ids: Sequence[str], table: tuple[str, str] | None
    ) -> set[str]:
        """Of these vendor ids, those that are not ``entry``'s to claim: recorded by
        another entry of the same object type, or held by the synced ``table``
        (qualified name, id column, both quoted) — a lost create never reached it."""
        wanted = list(ids)
        if not wanted:
            return set()
        rows = await self.pool.fetch(
            self._sql.known_ids, entry.connector, entry.object_type, entry.id, wanted
        )
        known = {str(row[0]) for row in rows}
        if table is not None:
            qualified, id_column = table
            rows = await self.pool.fetch(
                f"SELECT {id_column}::text FROM {qualified} "
                f"WHERE {id_column}::text = ANY($1::text[])",
                wanted,
            )
            known |= {str(row[0]) for row in rows}
        return known

    async def backlog(self) -> dict[str, int]:
        """Open entries by state (the work the resolver has not finished)."""
        return {str(row[0]): int(row[1]) for row in await self.pool.fetch(self._sql.count_open)}

    async def closed(self, ids: Iterable[int]) -> set[int]:
        """Those of these entries already in a terminal state (nothing left to do)."""
        wanted = list(ids)
        if not wanted:
            return set()
        return {int(row["id"]) for row in await self.pool.fetch(self._sql.closed_ids, wanted)}

    async def release(
        self, ids: Iterable[int], owner: str | None = None, retry_in: float = 0.0
    ) -> int:
        """Give up leases without changing the entries; due again in ``retry_in`` s."""
        wanted = list(ids)
        if not wanted:
            return 0
        return _count(
            await self.pool.execute(self._sql.release, wanted, owner or self.owner, retry_in)
        )

    async def settle(
        self,
        entry: Entry,
        state: EntryState,
        *,
        results: Sequence[Result | None] | None = None,
        error: str | None = None,
        attempted: bool = True,
        retry_in: float = 0.0,
        owner: str | None = None,
    ) -> bool:
        """Write the resolver's decision on a claimed entry and end the lease: the new
        state, new ``results`` if given (else kept), ``last_error``; an attempt is
        counted when ``attempted``. False when the lease was lost or the entry changed
        meanwhile (nothing is written then)."""
        status = await self.pool.execute(
            self._sql.settle,
            entry.id,
            owner or self.owner,
            entry.state.value,
            state.value,
            results_to_json(results),
            error,
            attempted,
            retry_in,
        )
        return _count(status) == 1

    # -- operators -------------------------------------------------------------------

    async def get(self, entry_id: int) -> Entry | None:
        row = await self.pool.fetchrow(self._sql.get, entry_id)
        return None if row is None else _entry(row)

    async def list(
        self, states: Iterable[EntryState] | None = None, limit: int = 100
    ) -> list[Entry]:
        """This database's entries, newest first."""
        wanted = None if states is None else [EntryState(s).value for s in states]
        rows = await self.pool.fetch(self._sql.list, wanted, limit)
        return [_entry(row) for row in rows]

    async def retry(self, entry_id: int) -> Entry:
        """Make an entry due now: a conflict is examined again (compare first, as
        always), an open entry skips its backoff. Others have nothing to retry."""
        row = await self.pool.fetchrow(self._sql.retry, entry_id)
        if row is not None:
            return _entry(row)
        entry = await self.get(entry_id)
        if entry is None:
            raise JournalError(f"no journal entry {entry_id}")
        raise JournalError(f"journal entry {entry_id} is {entry.state}: nothing to retry")

    async def purge(self, older_than: timedelta) -> int:
        """Delete committed, compensated and failed entries last changed before
        ``older_than`` ago (conflicts stay until someone resolves them)."""
        return _count(await self.pool.execute(self._sql.purge, older_than))


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: json.dumps(value, default=str),
        decoder=json.loads,
        schema="pg_catalog",
    )


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Before a connection goes back to the pool. asyncpg's default (``RESET ALL``,
    ``CLOSE ALL``, ``UNLISTEN *``, advisory unlocks) is one more round trip after every
    journal query, several per synced statement; the journal's connections never keep
    session state (its settings and locks are transaction-local), so only a
    transaction left open (a cancelled query) needs ending."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _plain(previous: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any] | None:
    if previous is None:
        return None
    return {str(key): dict(values) for key, values in previous.items()}


def _count(status: str) -> int:
    """The row count of a command tag such as ``UPDATE 3``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _verdict(value: str | None) -> Verdict | None:
    return None if value is None else Verdict(value)


def _entry(row: asyncpg.Record) -> Entry:
    return Entry(
        id=int(row["id"]),
        xid=int(row["xid"]),
        connector=row["connector"],
        object_type=row["object_type"],
        operation=Operation(row["operation"]),
        inputs=tuple(row["inputs"]),
        state=EntryState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        call_id=str(row["call_id"]),
        database=row["database"],
        previous=row["previous"],
        lookup_property=row["lookup_property"],
        results=results_from_json(row["results"]),
        rolled_back=row["rolled_back"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        claimed_by=row["claimed_by"],
        claimed_until=row["claimed_until"],
    )


__all__ = ["Journal", "JournalError", "default_owner"]
