"""DataRow ('D'): decoded when the proxy reads rows of its own statements."""

from __future__ import annotations

import struct

from proxy.wire.framing import INT16

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
