"""Bind ('B'): a portal made from a prepared statement and the client's parameter
values, kept as raw bytes in the client's own formats so that the proxy can reuse
them for its own statements without decoding them."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from proxy.wire.framing import INT16, INT32, message

NULL_LENGTH = -1
_SIGNED_INT32 = struct.Struct("!i")


@dataclass(frozen=True)
class Bind:
    portal: str
    statement: str
    param_formats: tuple[int, ...]
    values: tuple[bytes | None, ...]
    result_formats: tuple[int, ...]

    @classmethod
    def decode(cls, body: bytes) -> Bind:
        """ValueError when the message is malformed (PostgreSQL then answers it)."""
        try:
            return cls._decode(body)
        except struct.error as exc:
            raise ValueError(f"invalid Bind message: {exc}") from None

    @classmethod
    def _decode(cls, body: bytes) -> Bind:
        portal_end = body.index(b"\0")
        stmt_end = body.index(b"\0", portal_end + 1)
        pos = stmt_end + 1
        count = INT16.unpack_from(body, pos)[0]
        formats = struct.unpack_from(f"!{count}H", body, pos + 2)
        pos += 2 + 2 * count
        count = INT16.unpack_from(body, pos)[0]
        pos += 2
        values: list[bytes | None] = []
        for _ in range(count):
            length = _SIGNED_INT32.unpack_from(body, pos)[0]
            pos += 4
            if length == NULL_LENGTH:
                values.append(None)
            elif 0 <= length <= len(body) - pos:
                values.append(bytes(body[pos : pos + length]))
                pos += length
            else:  # PostgreSQL's pq_getmsgbytes
                raise ValueError("insufficient data left in message")
        count = INT16.unpack_from(body, pos)[0]
        results = struct.unpack_from(f"!{count}H", body, pos + 2)
        if pos + 2 + 2 * count != len(body):  # PostgreSQL's pq_getmsgend
            raise ValueError("invalid message format")
        return cls(
            portal=body[:portal_end].decode(),
            statement=body[portal_end + 1 : stmt_end].decode(),
            param_formats=formats,
            values=tuple(values),
            result_formats=results,
        )

    def encode(self) -> bytes:
        parts = [
            self.portal.encode(),
            b"\0",
            self.statement.encode(),
            b"\0",
            INT16.pack(len(self.param_formats)),
            struct.pack(f"!{len(self.param_formats)}H", *self.param_formats),
            INT16.pack(len(self.values)),
        ]
        for value in self.values:
            if value is None:
                parts.append(_SIGNED_INT32.pack(NULL_LENGTH))
            else:
                parts.append(INT32.pack(len(value)) + value)
        parts.append(INT16.pack(len(self.result_formats)))
        parts.append(struct.pack(f"!{len(self.result_formats)}H", *self.result_formats))
        return message(b"B", b"".join(parts))


def portal_and_statement(body: bytes) -> tuple[str, str]:
    """The portal and statement names of a Bind body, without decoding the rest."""
    portal_end = body.index(b"\0")
    stmt_end = body.index(b"\0", portal_end + 1)
    return body[:portal_end].decode(), body[portal_end + 1 : stmt_end].decode()
