"""proxy.wire.messages: every message the proxy reads or builds, byte for byte against
the protocol documentation, round trips, and what malformed input raises."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.wire.framing import HEADER, INT32
from proxy.wire.messages import extended, ready_for_query
from proxy.wire.messages.backend_key_data import BackendKey
from proxy.wire.messages.bind import NULL_LENGTH, Bind, portal_and_statement
from proxy.wire.messages.command_complete import command_complete
from proxy.wire.messages.data_row import data_row_values
from proxy.wire.messages.error_response import (
    FIELD_CODES,
    PgError,
    parse_fields,
    protocol_violation,
)
from proxy.wire.messages.parse import Parse, statement_name
from proxy.wire.messages.startup import (
    CANCEL_REQUEST_CODE,
    GSSENC_REQUEST_CODE,
    SSL_REQUEST_CODE,
    StartupError,
    StartupMessage,
    parse_startup,
)

PROTOCOL_30 = 3 << 16
PROTOCOL_32 = (3 << 16) | 2

# A NUL-free name/text, as the protocol's C strings require.
c_string = st.text(st.characters(blacklist_characters="\0", codec="utf-8"), max_size=40)


def body_of(framed: bytes, kind: bytes) -> bytes:
    """Check the header of a framed message and return its body."""
    got_kind, length = HEADER.unpack_from(framed)
    assert got_kind == kind
    assert length == len(framed) - 1
    return framed[HEADER.size :]


# --- Parse ------------------------------------------------------------------------


def test_parse_encodes_like_the_protocol_documentation() -> None:
    framed = Parse("s1", "select $1", (23,)).encode()
    assert framed == b"P\x00\x00\x00\x17s1\x00select $1\x00\x00\x01\x00\x00\x00\x17"


def test_parse_unnamed_statement_without_types_round_trips() -> None:
    parse = Parse("", "select 1", ())
    body = body_of(parse.encode(), b"P")
    assert body == b"\x00select 1\x00\x00\x00"
    assert Parse.decode(body) == parse
    assert statement_name(body) == ""


def test_parse_type_oids_are_unsigned_32_bit() -> None:
    parse = Parse("n", "q", (0, 25, 0xFFFFFFFF))
    assert Parse.decode(body_of(parse.encode(), b"P")).param_types == (0, 25, 0xFFFFFFFF)


@given(name=c_string, query=c_string, types=st.lists(st.integers(0, 2**32 - 1), max_size=8))
def test_parse_round_trip(name: str, query: str, types: list[int]) -> None:
    parse = Parse(name, query, tuple(types))
    body = body_of(parse.encode(), b"P")
    assert Parse.decode(body) == parse
    assert statement_name(body) == name


def test_parse_decodes_utf8() -> None:
    body = "stmt☃\0select 'Müller'\0".encode() + b"\x00\x00"
    assert Parse.decode(body) == Parse("stmt☃", "select 'Müller'", ())


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", ValueError),  # no name terminator
        (b"name", ValueError),
        (b"name\0select 1", ValueError),  # no query terminator
        (b"name\0select 1\0", ValueError),  # no parameter count
        (b"name\0select 1\0\x00\x02\x00\x00\x00\x17", ValueError),  # 2 types, 1 present
    ],
)
def test_parse_malformed(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        Parse.decode(body)


def test_statement_name_needs_a_terminator() -> None:
    assert statement_name(b"abc\0rest") == "abc"
    with pytest.raises(ValueError):
        statement_name(b"abc")


# --- Bind -------------------------------------------------------------------------


def test_bind_encodes_like_the_protocol_documentation() -> None:
    framed = Bind("p", "s", (1,), (b"\x00\x00\x00\x2a", None), (0, 1)).encode()
    assert framed == (
        b"B\x00\x00\x00\x20"
        b"p\x00s\x00"
        b"\x00\x01\x00\x01"  # one parameter format: binary
        b"\x00\x02"  # two values
        b"\x00\x00\x00\x04\x00\x00\x00\x2a"  # int4 42 in binary
        b"\xff\xff\xff\xff"  # NULL: length -1
        b"\x00\x02\x00\x00\x00\x01"  # result formats text, binary
    )


def test_bind_null_empty_and_binary_values_round_trip() -> None:
    bind = Bind(
        portal="",
        statement="",
        param_formats=(0, 1, 0),
        values=(None, b"", b"\x00\xff\x00"),
        result_formats=(),
    )
    body = body_of(bind.encode(), b"B")
    decoded = Bind.decode(body)
    assert decoded == bind
    assert decoded.values[0] is None  # NULL is not the empty string
    assert decoded.values[1] == b""
    assert portal_and_statement(body) == ("", "")


def test_bind_no_parameters() -> None:
    bind = Bind("portal", "stmt", (), (), ())
    body = body_of(bind.encode(), b"B")
    assert body == b"portal\0stmt\0" + b"\x00\x00" * 3
    assert Bind.decode(body) == bind
    assert portal_and_statement(body) == ("portal", "stmt")


def test_bind_null_length_constant() -> None:
    assert NULL_LENGTH == -1
    body = body_of(Bind("", "", (), (None,), ()).encode(), b"B")
    assert body[6:10] == b"\xff\xff\xff\xff"


@given(
    portal=c_string,
    statement=c_string,
    formats=st.lists(st.integers(0, 1), max_size=5),
    values=st.lists(st.none() | st.binary(max_size=50), max_size=8),
    results=st.lists(st.integers(0, 1), max_size=5),
)
def test_bind_round_trip(
    portal: str,
    statement: str,
    formats: list[int],
    values: list[bytes | None],
    results: list[int],
) -> None:
    bind = Bind(portal, statement, tuple(formats), tuple(values), tuple(results))
    body = body_of(bind.encode(), b"B")
    assert Bind.decode(body) == bind
    assert portal_and_statement(body) == (portal, statement)


def test_bind_values_are_bytes() -> None:
    body = body_of(Bind("", "s", (), (b"v",), ()).encode(), b"B")
    decoded = Bind.decode(body)
    assert decoded == Bind("", "s", (), (b"v",), ())
    assert type(decoded.values[0]) is bytes


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 5, 7, 9, 14, 19, 21, 22])
def test_bind_truncated_raises(cut: int) -> None:
    body = body_of(Bind("p", "s", (0,), (b"abcde",), (0,)).encode(), b"B")
    assert len(body) == 23
    with pytest.raises((ValueError, struct.error)):
        Bind.decode(body[:cut])


def test_bind_negative_value_length_other_than_null_is_refused() -> None:
    body = b"p\0s\0" + b"\0\0" + b"\0\1" + struct.pack("!i", -2) + b"\0\0"
    with pytest.raises(ValueError, match="insufficient data left in message"):
        Bind.decode(body)


def test_bind_value_longer_than_the_message_is_refused() -> None:
    body = b"p\0s\0" + b"\0\0" + b"\0\1" + struct.pack("!i", 9) + b"abc" + b"\0\0"
    with pytest.raises(ValueError, match="insufficient data left in message"):
        Bind.decode(body)


def test_bind_trailing_bytes_are_refused() -> None:
    body = body_of(Bind("p", "s", (), (b"x",), ()).encode(), b"B")
    assert Bind.decode(body).values == (b"x",)
    with pytest.raises(ValueError, match="invalid message format"):
        Bind.decode(body + b"junk")


def test_portal_and_statement_need_both_terminators() -> None:
    with pytest.raises(ValueError):
        portal_and_statement(b"portal\0stmt")


# --- the small extended-protocol messages -----------------------------------------


def test_sync_and_flush() -> None:
    assert extended.SYNC == b"S\x00\x00\x00\x04"
    assert extended.FLUSH == b"H\x00\x00\x00\x04"


def test_describe_and_close() -> None:
    assert extended.describe_portal() == b"D\x00\x00\x00\x06P\x00"
    assert extended.describe_statement("s1") == b"D\x00\x00\x00\x08Ss1\x00"
    assert extended.close_statement("s1") == b"C\x00\x00\x00\x08Ss1\x00"
    assert extended.close_portal("") == b"C\x00\x00\x00\x06P\x00"


@pytest.mark.parametrize(
    ("framed", "expected"),
    [
        (extended.describe_statement("stmt☃"), (ord("S"), "stmt☃")),
        (extended.describe_portal(""), (ord("P"), "")),
        (extended.close_statement(""), (ord("S"), "")),
        (extended.close_portal("cur"), (ord("P"), "cur")),
    ],
)
def test_target_name_round_trip(framed: bytes, expected: tuple[int, str]) -> None:
    assert extended.target_name(framed[5:]) == expected


def test_target_name_malformed() -> None:
    with pytest.raises(IndexError):
        extended.target_name(b"")
    with pytest.raises(ValueError):
        extended.target_name(b"Sname")  # no terminator


def test_execute() -> None:
    framed = extended.execute("c", max_rows=10)
    assert framed == b"E\x00\x00\x00\x0ac\x00\x00\x00\x00\x0a"
    assert extended.execute_portal(framed[5:]) == "c"
    assert extended.execute() == b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00"
    assert extended.execute_portal(extended.execute()[5:]) == ""
    with pytest.raises(ValueError):
        extended.execute_portal(b"no terminator")


# --- CommandComplete, ReadyForQuery, DataRow --------------------------------------


def test_command_complete() -> None:
    assert command_complete("INSERT 0 1") == b"C\x00\x00\x00\x0fINSERT 0 1\x00"
    assert command_complete("") == b"C\x00\x00\x00\x05\x00"


def test_ready_for_query_statuses() -> None:
    assert (ord("I"), ord("T")) == (ready_for_query.IDLE, ready_for_query.IN_TRANSACTION)
    assert ord("E") == ready_for_query.FAILED_TRANSACTION


def data_row(values: list[bytes | None]) -> bytes:
    parts = [struct.pack("!H", len(values))]
    for value in values:
        parts.append(struct.pack("!i", -1) if value is None else INT32.pack(len(value)) + value)
    return b"".join(parts)


def test_data_row_values() -> None:
    assert data_row_values(data_row([b"1", None, b"", b"\x00\x01"])) == [
        b"1",
        None,
        b"",
        b"\x00\x01",
    ]
    assert data_row_values(b"\x00\x00") == []


@given(st.lists(st.none() | st.binary(max_size=30), max_size=10))
def test_data_row_round_trip(values: list[bytes | None]) -> None:
    assert data_row_values(data_row(values)) == values


@pytest.mark.parametrize("body", [b"", b"\x00", b"\x00\x01", b"\x00\x02\xff\xff\xff\xff"])
def test_data_row_truncated_header_raises(body: bytes) -> None:
    with pytest.raises(struct.error):
        data_row_values(body)


# --- ErrorResponse / NoticeResponse -----------------------------------------------


def test_error_encodes_fields_in_order_with_a_final_terminator() -> None:
    framed = PgError("23505", "duplicate", detail="Key exists.").encode()
    body = body_of(framed, b"E")
    assert body == (b"SERROR\0VERROR\0C23505\0Mduplicate\0DKey exists.\0\0")


def test_notice_uses_its_own_type_byte() -> None:
    framed = PgError("01000", "careful", severity="WARNING").encode(b"N")
    assert framed[:1] == b"N"
    assert parse_fields(framed[5:]) == {
        "severity": "WARNING",
        "severity_nonlocalized": "WARNING",
        "sqlstate": "01000",
        "message": "careful",
    }


def test_error_round_trip_with_extra_fields() -> None:
    error = PgError(
        "23505",
        'duplicate key value violates unique constraint "contact_email_key"',
        detail="Key (email)=(a@b.c) already exists.",
        hint="Use ON CONFLICT.",
        extra={
            "schema_name": "hubspot",
            "table_name": "contact",
            "constraint_name": "contact_email_key",
            "column_name": "email",
            "position": "15",
        },
    )
    fields = parse_fields(error.encode()[5:])
    assert fields == {
        "severity": "ERROR",
        "severity_nonlocalized": "ERROR",
        "sqlstate": "23505",
        "message": error.message,
        "detail": error.detail,
        "hint": "Use ON CONFLICT.",
        "schema_name": "hubspot",
        "table_name": "contact",
        "constraint_name": "contact_email_key",
        "column_name": "email",
        "position": "15",
    }


def test_error_unknown_extra_field_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        PgError("XX000", "x", extra={"no_such_field": "1"}).encode()


def test_parse_fields_keeps_unknown_codes_by_letter_and_replaces_bad_utf8() -> None:
    body = b"SFATAL\0C08P01\0Mbad \xff byte\0Fpostgres.c\0L123\0Rfunc\0\0"
    assert parse_fields(body) == {
        "severity": "FATAL",
        "sqlstate": "08P01",
        "message": "bad \ufffd byte",
        "F": "postgres.c",
        "L": "123",
        "R": "func",
    }


def test_parse_fields_empty_and_unterminated() -> None:
    assert parse_fields(b"") == {}
    assert parse_fields(b"\0") == {}
    with pytest.raises(ValueError):
        parse_fields(b"Mmessage")


def test_empty_field_values_round_trip() -> None:
    fields = parse_fields(PgError("", "").encode()[5:])
    assert fields["sqlstate"] == ""
    assert fields["message"] == ""


def test_field_codes_match_the_protocol() -> None:
    assert FIELD_CODES["sqlstate"] == b"C"
    assert FIELD_CODES["severity_nonlocalized"] == b"V"
    assert FIELD_CODES["constraint_name"] == b"n"
    assert len(set(FIELD_CODES.values())) == len(FIELD_CODES)


def test_protocol_violation_is_fatal_08p01() -> None:
    framed = protocol_violation("invalid message length 3")
    assert framed[:1] == b"E"
    assert parse_fields(framed[5:]) == {
        "severity": "FATAL",
        "severity_nonlocalized": "FATAL",
        "sqlstate": "08P01",
        "message": "invalid message length 3",
    }


# --- BackendKeyData and CancelRequest ---------------------------------------------


def test_backend_key_protocol_30_four_byte_secret() -> None:
    key = BackendKey(pid=1234, secret=b"\x01\x02\x03\x04")
    framed = key.encode()
    assert framed == b"K\x00\x00\x00\x0c\x00\x00\x04\xd2\x01\x02\x03\x04"
    assert BackendKey.decode(framed[5:]) == key


@pytest.mark.parametrize("length", [4, 32, 256])
def test_backend_key_protocol_32_long_secrets_round_trip(length: int) -> None:
    key = BackendKey(pid=(5 << 24) | 7, secret=bytes(range(256))[:length])
    body = body_of(key.encode(), b"K")
    assert len(body) == 4 + length
    decoded = BackendKey.decode(body)
    assert decoded == key
    assert type(decoded.secret) is bytes


@pytest.mark.parametrize("length", [4, 32, 256])
def test_cancel_request_round_trip(length: int) -> None:
    key = BackendKey(pid=0xFFFFFFFF, secret=b"\xaa" * length)
    packet = key.cancel_request()
    assert INT32.unpack_from(packet, 0)[0] == len(packet) == 12 + length
    assert INT32.unpack_from(packet, 4)[0] == CANCEL_REQUEST_CODE == 80877102
    assert BackendKey.from_cancel_request(packet) == key


def test_backend_key_malformed() -> None:
    with pytest.raises(struct.error):
        BackendKey.decode(b"\x00\x01")
    with pytest.raises(ValueError):
        BackendKey.from_cancel_request(b"\x00\x00\x00\x0c\x04\xd2\x16\x2e")
    # A CancelRequest without a secret decodes to an empty secret (it matches no key).
    assert BackendKey.from_cancel_request(
        INT32.pack(12) + INT32.pack(CANCEL_REQUEST_CODE) + INT32.pack(9)
    ) == BackendKey(9, b"")


# --- StartupMessage ---------------------------------------------------------------


def startup(version: int = PROTOCOL_30, /, **params: str) -> bytes:
    body = INT32.pack(version)
    body += b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items())
    body += b"\0"
    return INT32.pack(len(body) + 4) + body


def test_request_codes() -> None:
    assert (SSL_REQUEST_CODE, GSSENC_REQUEST_CODE) == (80877103, 80877104)
    assert SSL_REQUEST_CODE >> 16 == 1234


def test_startup_parameters_and_raw_bytes() -> None:
    packet = startup(user="ada", database="app", application_name="psql", options="")
    parsed = parse_startup(packet)
    assert parsed == StartupMessage(
        version=PROTOCOL_30,
        parameters={"user": "ada", "database": "app", "application_name": "psql", "options": ""},
        raw=packet,
    )
    assert (parsed.user, parsed.database) == ("ada", "app")


def test_startup_database_defaults_to_the_user() -> None:
    parsed = parse_startup(startup(user="ada"))
    assert parsed.database == "ada"
    assert parse_startup(startup(user="ada", database="")).database == "ada"


def test_startup_protocol_32_is_accepted() -> None:
    parsed = parse_startup(startup(PROTOCOL_32, user="ada", _pq_="x"))
    assert parsed.version == PROTOCOL_32
    assert parsed.parameters["_pq_"] == "x"


def test_startup_unicode_parameters() -> None:
    assert parse_startup(startup(user="müller", database="☃")).parameters == {
        "user": "müller",
        "database": "☃",
    }


@pytest.mark.parametrize(
    ("version", "shown"),
    [(2 << 16, "2.0"), ((4 << 16) | 1, "4.1"), (SSL_REQUEST_CODE, "1234.5679"), (0, "0.0")],
)
def test_startup_unsupported_protocol_is_0a000(version: int, shown: str) -> None:
    with pytest.raises(StartupError) as caught:
        parse_startup(startup(version, user="ada"))
    assert caught.value.sqlstate == "0A000"
    assert str(caught.value) == (
        f"unsupported frontend protocol {shown}: server supports 3.0 to 3.2"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",  # no terminator at all
        b"user\0ada\0",  # pairs but no terminator
        b"user\0ada",  # a value without its NUL
        b"user\0",  # a name without a value
        b"user",
        b"user\0ada\0\0x",  # bytes after the terminator
        b"user\0ada\0\0\0",
    ],
)
def test_startup_layout_errors_are_08p01(body: bytes) -> None:
    payload = INT32.pack(PROTOCOL_30) + body
    packet = INT32.pack(len(payload) + 4) + payload
    with pytest.raises(StartupError) as caught:
        parse_startup(packet)
    assert caught.value.sqlstate == "08P01"
    assert "invalid startup packet layout" in str(caught.value)


def test_startup_invalid_utf8_is_08p01() -> None:
    payload = INT32.pack(PROTOCOL_30) + b"user\0\xff\xfe\0\0"
    with pytest.raises(StartupError) as caught:
        parse_startup(INT32.pack(len(payload) + 4) + payload)
    assert caught.value.sqlstate == "08P01"
    assert str(caught.value) == "invalid byte sequence in startup packet"


@pytest.mark.parametrize("params", [{}, {"database": "app"}, {"user": ""}])
def test_startup_without_user_is_28000(params: dict[str, str]) -> None:
    with pytest.raises(StartupError) as caught:
        parse_startup(startup(**params))
    assert caught.value.sqlstate == "28000"
    assert str(caught.value) == "no PostgreSQL user name specified in startup packet"


def test_startup_error_is_a_value_error_with_default_sqlstate() -> None:
    error = StartupError("x")
    assert isinstance(error, ValueError)
    assert error.sqlstate == "08P01"


@given(
    st.dictionaries(
        st.text(st.characters(blacklist_characters="\0", codec="utf-8"), min_size=1, max_size=10),
        c_string,
        max_size=5,
    )
)
def test_startup_round_trip(params: dict[str, str]) -> None:
    params = {**params, "user": "u"}
    assert parse_startup(startup(**params)).parameters == params


def test_parse_keeps_bytes_invalid_in_the_client_encoding() -> None:
    """Text is read in the session's client encoding; bytes invalid in it survive a
    round trip unchanged, for PostgreSQL to reject as it would without the proxy."""
    body = b"\xff\0select '\xeb'\0\x00\x00"
    parse = Parse.decode(body)
    assert parse.encode() == b"P" + (len(body) + 4).to_bytes(4, "big") + body
    latin1 = Parse.decode(body, "latin-1")
    assert latin1.query == "select '\u00eb'"
    assert latin1.encode("latin-1") == parse.encode()


def test_channel_binding_is_withheld_from_sasl_mechanisms() -> None:
    from proxy.frontend.handshake import without_channel_binding

    offered = b"\x00\x00\x00\x0aSCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"
    assert without_channel_binding(offered) == b"\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00"
    plain = b"\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00"
    assert without_channel_binding(plain) == plain
