"""Parse ('P'): a prepared statement's name, SQL text and declared parameter types."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from proxy.wire.framing import INT16, message


@dataclass(frozen=True)
class Parse:
    name: str
    query: str
    param_types: tuple[int, ...]

    @classmethod
    def decode(cls, body: bytes, encoding: str = "utf-8") -> Parse:
        """The message in the session's client encoding (names and text alike);
        ValueError when it is malformed (PostgreSQL then answers it with its own error)."""
        try:
            name_end = body.index(b"\0")
            query_end = body.index(b"\0", name_end + 1)
            count = INT16.unpack_from(body, query_end + 1)[0]
            types = struct.unpack_from(f"!{count}I", body, query_end + 3)
        except (ValueError, struct.error) as exc:
            raise ValueError(f"invalid Parse message: {exc}") from None
        return cls(
            name=body[:name_end].decode(encoding, "surrogateescape"),
            query=body[name_end + 1 : query_end].decode(encoding, "surrogateescape"),
            param_types=types,
        )

    def encode(self, encoding: str = "utf-8") -> bytes:
        return message(
            b"P",
            self.name.encode(encoding, "surrogateescape")
            + b"\0"
            + self.query.encode(encoding, "surrogateescape")
            + b"\0"
            + INT16.pack(len(self.param_types))
            + struct.pack(f"!{len(self.param_types)}I", *self.param_types),
        )


def statement_name(body: bytes) -> str:
    """The statement name of a Parse body, without decoding the rest."""
    return body[: body.index(b"\0")].decode()
