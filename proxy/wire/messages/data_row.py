"""DataRow ('D') and CommandComplete ('C'): built for results the proxy assembles."""

from __future__ import annotations

import struct

from proxy.wire.framing import INT16, message

_SIGNED_INT32 = struct.Struct("!i")


def data_row_values(body: bytes) -> list[bytes | None]:
    """Decode a DataRow body into raw column values."""
    count = INT16.unpack_from(body, 0)[0]
    pos = 2
    values: list[bytes | None] = []
    for _ in range(count):
        length = _SIGNED_INT32.unpack_from(body, pos)[0]
        pos += 4
        if length < 0:
            values.append(None)
        else:
            values.append(body[pos : pos + length])
            pos += length
    return values


def command_complete(tag: str) -> bytes:
    return message(b"C", tag.encode() + b"\0")
