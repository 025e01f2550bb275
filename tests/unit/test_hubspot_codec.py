"""proxy.connectors.hubspot.codec: SQL-side values to HubSpot property strings and back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.connectors.base import ApiError, ErrorKind
from proxy.connectors.hubspot.codec import decode_properties, encode_properties, encode_value


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (True, "true"),
        (False, "false"),  # bool before int: not "0"
        (0, "0"),
        (-5, "-5"),
        (2**70, "1180591620717411303424"),
        (0.1, "0.1"),  # no float noise
        (2.0, "2"),
        (-0.0, "0"),
        (1e20, "100000000000000000000"),
        (1e-7, "0.0000001"),
        (Decimal("1.50"), "1.5"),
        (Decimal("-0"), "0"),
        (Decimal("1E+3"), "1000"),
        (Decimal("-12.3400"), "-12.34"),
        (date(2024, 2, 29), "2024-02-29"),
        ("hello", "hello"),
        ("", ""),
        ("2024-05-01", "2024-05-01"),  # a date string is left alone
        (["a", "b"], "a;b"),
        (("x", 1, True), "x;1;true"),
        ([], ""),
    ],
)
def test_encode_value(value: object, encoded: str) -> None:
    assert encode_value(value) == encoded


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        # Naive datetimes are taken as UTC; milliseconds truncate, never round.
        (datetime(2024, 5, 1, 10, 0, 0, 123999), "2024-05-01T10:00:00.123Z"),
        (
            datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T08:00:00.000Z",
        ),
        (
            datetime(2024, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            "2023-12-31T23:30:00.000Z",
        ),
        # PostgreSQL text output and JSON spellings of timestamps.
        ("2024-05-01 10:00:00+02", "2024-05-01T08:00:00.000Z"),
        ("2024-05-01 10:00:00+05:30", "2024-05-01T04:30:00.000Z"),
        ("2024-05-01T10:00Z", "2024-05-01T10:00:00.000Z"),
        ("2024-05-01 10:00:00.5", "2024-05-01T10:00:00.500Z"),
        ("2024-05-01T10:00:00.123456-0100", "2024-05-01T11:00:00.123Z"),
    ],
)
def test_encode_timestamps_as_utc_iso_with_milliseconds(value: object, encoded: str) -> None:
    assert encode_value(value) == encoded


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (float("nan"), "float"),
        (float("inf"), "float"),
        (Decimal("NaN"), "Decimal"),
        (Decimal("-Infinity"), "Decimal"),
        ({"a": 1}, "dict"),
        (b"x", "bytes"),
        (None, "NoneType"),
        (["ok", {"nested": 1}], "dict"),
    ],
)
def test_encode_unsupported_values(value: object, type_name: str) -> None:
    with pytest.raises(TypeError) as caught:
        encode_value(value)
    assert str(caught.value) == f"cannot send a {type_name} value to HubSpot"


def test_encode_properties_create_leaves_none_out() -> None:
    row = {"email": "a@b.c", "firstname": None, "age": 3, "vip": False}
    assert encode_properties(row, clearing=False) == {"email": "a@b.c", "age": "3", "vip": "false"}


def test_encode_properties_update_clears_none_with_empty_string() -> None:
    row = {"email": "a@b.c", "firstname": None}
    assert encode_properties(row, clearing=True) == {"email": "a@b.c", "firstname": ""}


def test_encode_properties_names_the_unencodable_column() -> None:
    with pytest.raises(ApiError) as caught:
        encode_properties({"ok": 1, "meta": {"a": 1}}, clearing=False)
    error = caught.value
    assert error.kind is ErrorKind.UNSUPPORTED
    assert error.column == "meta"
    assert error.message == "cannot send a dict value to HubSpot"
    assert error.sqlstate == "0A000"
    assert error.__cause__ is None


def test_encode_properties_invalid_timestamp_text_is_unsupported() -> None:
    with pytest.raises(ApiError) as caught:
        encode_properties({"born": "2024-13-01 10:00:00"}, clearing=False)
    assert caught.value.kind is ErrorKind.UNSUPPORTED
    assert caught.value.column == "born"


def test_encode_properties_out_of_range_datetime_is_unsupported() -> None:
    late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-2)))
    with pytest.raises(ApiError) as caught:
        encode_properties({"born": late}, clearing=False)
    assert caught.value.kind is ErrorKind.UNSUPPORTED
    assert caught.value.column == "born"


def test_encode_years_before_1000_with_four_digits() -> None:
    assert encode_value(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000Z"
    assert encode_value(date(5, 6, 7)) == "0005-06-07"


def test_decode_properties() -> None:
    assert decode_properties({"a": "", "b": None, "c": 0, "d": "x", "e": "false", "f": 1.5}) == {
        "a": None,
        "b": None,
        "c": "0",
        "d": "x",
        "e": "false",
        "f": "1.5",
    }
    assert decode_properties({}) == {}


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6))
def test_decimal_encoding_preserves_the_value(value: Decimal) -> None:
    encoded = encode_value(value)
    assert "E" not in encoded and "e" not in encoded
    assert Decimal(encoded) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_encoding_round_trips(value: float) -> None:
    encoded = encode_value(value)
    assert "e" not in encoded
    assert float(encoded) == value


@given(st.datetimes(timezones=st.just(UTC)))
def test_datetime_encoding_is_parseable_and_millisecond_exact(value: datetime) -> None:
    encoded = encode_value(value)
    assert encoded.endswith("Z") and len(encoded) == 24
    parsed = datetime.fromisoformat(encoded.replace("Z", "+00:00"))
    assert parsed == value.replace(microsecond=value.microsecond // 1000 * 1000)
