"""The untyped packets a client may open a connection with: StartupMessage,
SSLRequest, GSSENCRequest and CancelRequest."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.wire.framing import INT32

SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102
PROTOCOL_MAJOR = 3


@dataclass(frozen=True)
class StartupMessage:
    """A protocol-3 StartupMessage; ``raw`` is forwarded upstream byte-for-byte."""

    version: int
    parameters: dict[str, str]
    raw: bytes

    @property
    def user(self) -> str:
        return self.parameters.get("user", "")

    @property
    def database(self) -> str:
        return self.parameters.get("database") or self.user


class StartupError(ValueError):
    """The packet is not a StartupMessage PostgreSQL would accept; ``sqlstate`` is the
    code PostgreSQL reports for the same packet."""

    def __init__(self, message: str, sqlstate: str = "08P01") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def parse_startup(packet: bytes) -> StartupMessage:
    """Parse a full StartupMessage packet (length prefix included)."""
    version = INT32.unpack_from(packet, 4)[0]
    if version >> 16 != PROTOCOL_MAJOR:
        raise StartupError(
            f"unsupported frontend protocol {version >> 16}.{version & 0xFFFF}: "
            "server supports 3.0 to 3.2",
            sqlstate="0A000",
        )
    # PostgreSQL's loop: name/value pairs until an empty name, which must be the last
    # byte (so nothing may follow the terminator, and every value needs its NUL).
    pairs: list[tuple[bytes, bytes]] = []
    pos, n = 8, len(packet)
    while pos < n and packet[pos]:
        name_end = packet.find(b"\0", pos)
        value_end = packet.find(b"\0", name_end + 1) if 0 <= name_end < n - 1 else -1
        if value_end < 0:
            break
        pairs.append((packet[pos:name_end], packet[name_end + 1 : value_end]))
        pos = value_end + 1
    if pos != n - 1 or packet[-1]:
        raise StartupError("invalid startup packet layout: expected terminator as last byte")
    try:
        params = {name.decode(): value.decode() for name, value in pairs}
    except UnicodeDecodeError as exc:
        raise StartupError("invalid byte sequence in startup packet") from exc
    if not params.get("user"):
        raise StartupError("no PostgreSQL user name specified in startup packet", sqlstate="28000")
    return StartupMessage(version=version, parameters=params, raw=packet)
