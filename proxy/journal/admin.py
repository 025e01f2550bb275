"""``writeproxy journal``: list entries and retry one, for operators. Output names
entries, transactions, object types and errors, never row values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from .model import Entry, EntryState
from .schema import installed_version
from .store import Journal

COLUMNS = (
    "id",
    "created",
    "xid",
    "connector",
    "object type",
    "operation",
    "state",
    "attempts",
    "last error",
)
_ERROR_WIDTH = 80


def _row(entry: Entry) -> tuple[str, ...]:
    state = str(entry.state) + (" (rolled back)" if entry.rolled_back else "")
    error = (entry.last_error or "").replace("\n", " ")
    if len(error) > _ERROR_WIDTH:
        error = error[: _ERROR_WIDTH - 1] + "…"
    return (
        str(entry.id),
        entry.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        str(entry.xid),
        entry.connector,
        entry.object_type,
        str(entry.operation),
        state,
        str(entry.attempts),
        error,
    )


def format_table(entries: Sequence[Entry]) -> str:
    rows = [COLUMNS, *(_row(e) for e in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


async def list_entries(dsn: str, schema: str, states: Sequence[str] = (), limit: int = 50) -> str:
    async with Journal(dsn, schema=schema, max_size=1) as journal:
        async with journal.pool.acquire() as conn:
            if await installed_version(conn, schema) is None:
                return f"no journal yet (schema {schema} has no journal tables)"
        wanted = [EntryState(s) for s in states] or None
        entries = await journal.list(wanted, limit)
    if not entries:
        return "no journal entries" + (f" in state {', '.join(states)}" if states else "")
    return format_table(entries)


async def retry_entry(dsn: str, schema: str, entry_id: int) -> str:
    """Make an entry due now; the running proxies' recovery loop picks it up."""
    async with Journal(dsn, schema=schema, max_size=1) as journal:
        entry = await journal.retry(entry_id)
    return (
        f"journal entry {entry.id} is {entry.state} and due now; a running proxy resolves "
        "it within its recovery interval"
    )


__all__ = ["COLUMNS", "format_table", "list_entries", "retry_entry"]
