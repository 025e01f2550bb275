"""proxy.wire.framing: the type byte + int32 length header and the frame checks
PostgreSQL applies to client messages in an established session."""

from __future__ import annotations

import pytest

from proxy.wire.framing import (
    FRONTEND_AUTH_TYPES,
    FRONTEND_READY_TYPES,
    FRONTEND_SMALL_TYPES,
    HEADER,
    INT16,
    INT32,
    MAX_SMALL_MESSAGE,
    MAX_STARTUP_PACKET,
    frame_problem,
    message,
)

LIMIT = 1 << 20


def test_message_header_counts_itself_but_not_the_type_byte() -> None:
    assert message(b"Q", b"select 1\0") == b"Q\x00\x00\x00\x0dselect 1\x00"
    assert message(b"S") == b"S\x00\x00\x00\x04"


def test_header_round_trip() -> None:
    framed = message(b"D", b"x" * 300)
    kind, length = HEADER.unpack_from(framed)
    assert (kind, length) == (b"D", 304)
    assert framed[HEADER.size :] == b"x" * 300
    assert len(framed) == length + 1


def test_integer_codecs_are_big_endian_unsigned() -> None:
    assert INT32.pack(1) == b"\x00\x00\x00\x01"
    assert INT16.pack(0x0102) == b"\x01\x02"
    assert INT32.unpack(b"\xff\xff\xff\xff") == (0xFFFFFFFF,)


def test_message_type_sets() -> None:
    assert frozenset(b"QPBEDCHSXFdcf") == FRONTEND_READY_TYPES
    assert FRONTEND_SMALL_TYPES < FRONTEND_READY_TYPES
    # Parse, Bind, Query, CopyData and FunctionCall may be large.
    assert not FRONTEND_SMALL_TYPES & frozenset(b"QPBdF")
    assert {ord("p")} == FRONTEND_AUTH_TYPES
    assert MAX_STARTUP_PACKET == 10_004


@pytest.mark.parametrize("kind", sorted(FRONTEND_READY_TYPES))
def test_every_ready_type_with_a_minimal_frame_is_accepted(kind: int) -> None:
    assert frame_problem(kind, 4, LIMIT) is None


@pytest.mark.parametrize("kind", [ord("p"), ord("Z"), ord("K"), 0, ord("q"), 0xFF])
def test_unknown_types_are_refused(kind: int) -> None:
    assert frame_problem(kind, 4, LIMIT) == f"invalid frontend message type {kind}"


@pytest.mark.parametrize("length", [0, 1, 3, LIMIT + 1])
def test_lengths_outside_4_to_limit_are_refused(length: int) -> None:
    assert frame_problem(ord("Q"), length, LIMIT) == f"invalid message length {length}"


def test_limit_itself_is_allowed() -> None:
    assert frame_problem(ord("Q"), LIMIT, LIMIT) is None


@pytest.mark.parametrize("kind", sorted(FRONTEND_SMALL_TYPES))
def test_small_types_are_capped_at_postgres_small_message_limit(kind: int) -> None:
    assert frame_problem(kind, MAX_SMALL_MESSAGE, LIMIT) is None
    assert frame_problem(kind, MAX_SMALL_MESSAGE + 1, LIMIT) == (
        f"invalid message length {MAX_SMALL_MESSAGE + 1}"
    )


@pytest.mark.parametrize("kind", sorted(FRONTEND_READY_TYPES - FRONTEND_SMALL_TYPES))
def test_large_types_may_exceed_the_small_limit(kind: int) -> None:
    assert frame_problem(kind, MAX_SMALL_MESSAGE + 1, LIMIT) is None
