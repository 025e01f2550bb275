"""The few SOQL queries the connector needs, with literals escaped as SOQL wants."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from urllib.parse import quote_plus

_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"'}


def literal(value: str) -> str:
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in value) + "'"


def instant(moment: datetime) -> str:
    """A datetime literal (unquoted, UTC)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def select_in(object_name: str, fields: Sequence[str], key: str, values: Sequence[str]) -> str:
    listed = ", ".join(literal(v) for v in values)
    return f"SELECT {', '.join(fields)} FROM {object_name} WHERE {key} IN ({listed})"


#: Bytes of URL-encoded values per query: a query travels in the URL, which Salesforce
#: caps at 16,384 bytes (non-ASCII and punctuation grow up to 9x when encoded).
QUERY_BUDGET = 10_000


def select_in_chunks(
    object_name: str,
    fields: Sequence[str],
    key: str,
    values: Sequence[str],
    budget: int = QUERY_BUDGET,
) -> Iterator[str]:
    """``select_in`` over ``values`` split so that each query fits the URL."""
    chunk: list[str] = []
    size = 0
    for value in values:
        cost = len(quote_plus(literal(value))) + 3
        if chunk and size + cost > budget:
            yield select_in(object_name, fields, key, chunk)
            chunk, size = [], 0
        chunk.append(value)
        size += cost
    if chunk:
        yield select_in(object_name, fields, key, chunk)


def select_created_since(object_name: str, fields: Sequence[str], since: datetime) -> str:
    return (
        f"SELECT {', '.join(fields)} FROM {object_name} "
        f"WHERE CreatedDate >= {instant(since)} ORDER BY CreatedDate, Id"
    )
