"""Message framing for protocol 3: a type byte, then a big-endian int32 length that
counts itself but not the type byte. Startup-phase packets have no type byte."""

from __future__ import annotations

import struct

HEADER = struct.Struct("!cI")
INT32 = struct.Struct("!I")
INT16 = struct.Struct("!H")

#: Message types a client may send once the session is established (PostgreSQL's
#: PostgresMain accepts exactly these; anything else is a protocol violation).
FRONTEND_READY_TYPES = frozenset(b"QPBEDCHSXFdcf")
#: Types PostgreSQL reads with PQ_SMALL_MESSAGE_LIMIT (SocketBackend): it drops a
#: connection that sends a longer one, so the proxy refuses them first.
FRONTEND_SMALL_TYPES = frozenset(b"CDEHSXcf")
MAX_SMALL_MESSAGE = 10_000
#: During authentication a client may only answer with PasswordMessage-family 'p'.
FRONTEND_AUTH_TYPES = frozenset(b"p")

#: PostgreSQL's own cap on a startup packet: MAX_STARTUP_PACKET_LENGTH (10000) does
#: not count the 4-byte length word, which this does.
MAX_STARTUP_PACKET = 10_000 + 4
#: Cap on a password/SASL message. Stricter than PostgreSQL's (PG_MAX_AUTH_TOKEN_LENGTH,
#: 65535) but ample for passwords and SCRAM; large GSSAPI tokens would not fit.
MAX_AUTH_MESSAGE = 10_000


def frame_problem(kind: int, length: int, limit: int) -> str | None:
    """Why PostgreSQL would reject a client frame in an established session, if it would."""
    if kind not in FRONTEND_READY_TYPES:
        return f"invalid frontend message type {kind}"
    if not 4 <= length <= limit or (length > MAX_SMALL_MESSAGE and kind in FRONTEND_SMALL_TYPES):
        return f"invalid message length {length}"
    return None


def message(kind: bytes, body: bytes = b"") -> bytes:
    """Frame ``body`` as a message of type ``kind``."""
    return HEADER.pack(kind, len(body) + 4) + body
