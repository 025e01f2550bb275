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
    """The packet is not a StartupMessage PostgreSQL would accept."""


def parse_startup(packet: bytes) -> StartupMessage:
    """Parse a full StartupMessage packet (length prefix included)."""
    version = INT32.unpack_from(packet, 4)[0]
    if version >> 16 != PROTOCOL_MAJOR:
        raise StartupError(
            f"unsupported frontend protocol {version >> 16}.{version & 0xFFFF}: "
            "server supports 3.0 to 3.2"
        )
    body = packet[8:]
    if not body.endswith(b"\0"):
        raise StartupError("invalid startup packet layout: expected terminator as last byte")
    parts = body[:-1].split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    if len(parts) % 2:
        raise StartupError("invalid startup packet layout: expected terminator as last byte")
    try:
        params = {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts), 2)}
    except UnicodeDecodeError as exc:
        raise StartupError("invalid byte sequence in startup packet") from exc
    if not params.get("user"):
        raise StartupError("no PostgreSQL user name specified in startup packet")
    return StartupMessage(version=version, parameters=params, raw=packet)
