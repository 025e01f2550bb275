"""The few SOQL queries the connector needs, with literals escaped as SOQL wants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

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


def select_created_since(object_name: str, fields: Sequence[str], since: datetime) -> str:
    return (
        f"SELECT {', '.join(fields)} FROM {object_name} "
        f"WHERE CreatedDate >= {instant(since)} ORDER BY CreatedDate, Id"
    )
