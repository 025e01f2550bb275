"""The values of a synced write (proxy.writes.vendor, proxy.backend.params): what the
vendor is sent for each PostgreSQL type, and the local row written from its answer
(README: type mapping)."""

from __future__ import annotations

from decimal import Decimal

from proxy.backend.params import dumps_exact, loads_exact
from proxy.connectors.base import ApiObject
from proxy.writes.tables import Column, SyncedTable
from proxy.writes.vendor import merge, properties
from tests.unit.hubspot_tables import build_table as _build_table

TS = "timestamp with time zone"


def table() -> SyncedTable:
    return _build_table(
        ("hubspot", "contact"),
        [
            Column("id", "text"),
            Column("email", "text"),
            Column("tags", "text[]"),
            Column("prefs", "jsonb"),
            Column("score", "numeric"),
            Column("_sync_updated_at", TS),
        ],
        "hubspot",
        None,
        {},
    )


def test_numbers_keep_every_digit_both_ways() -> None:
    image = loads_exact('{"score": 12345678901234567890.123456789, "n": 7, "f": [1.50]}')
    assert image == {
        "score": Decimal("12345678901234567890.123456789"),
        "n": 7,
        "f": [Decimal("1.50")],
    }
    assert dumps_exact(image) == ('{"score": 12345678901234567890.123456789, "n": 7, "f": [1.50]}')


def test_a_string_that_looks_like_the_marker_stays_a_string() -> None:
    assert dumps_exact({"a": "\\u0000123\\u0000"}) == '{"a": "\\\\u0000123\\\\u0000"}'


def test_json_columns_are_sent_as_their_json_text() -> None:
    sent = properties(table(), {"prefs": {"a": [1, Decimal("2.5")]}, "tags": ["x", "y"]})
    assert sent["prefs"] == '{"a": [1, 2.5]}'
    assert sent["tags"] == ["x", "y"]  # a multi-select: the connector joins it
    assert properties(table(), {"prefs": None})["prefs"] is None


def test_the_local_row_takes_the_vendors_values() -> None:
    answer = ApiObject(
        "501",
        {"email": "a@b.c", "tags": "x;y", "prefs": '{"a": [1, 2.5]}', "score": "1.5"},
        "t",
        "t",
    )
    row = {"id": None, "email": "A@b.c", "tags": ["x", "y"], "prefs": {}, "score": Decimal(1)}
    merged = merge(table(), row, answer, {"_sync_updated_at": "now"})
    assert merged == {
        "id": "501",
        "email": "a@b.c",
        "tags": ["x", "y"],  # split back into the array
        "prefs": {"a": [1, Decimal("2.5")]},  # the JSON text sent, read back
        "score": "1.5",
        "_sync_updated_at": "now",
    }
