"""BackendKeyData ('K'): the process id and secret a client needs to cancel.

The proxy hands clients the upstream's key unchanged (see ``proxy.cancel``). Protocol
3.2 allows secrets of up to 256 bytes; 3.0 uses exactly 4."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.wire.framing import INT32, message
from proxy.wire.messages.startup import CANCEL_REQUEST_CODE


@dataclass(frozen=True)
class BackendKey:
    pid: int
    secret: bytes

    def encode(self) -> bytes:
        return message(b"K", INT32.pack(self.pid) + self.secret)

    def cancel_request(self) -> bytes:
        """The CancelRequest packet that cancels this backend's running query."""
        body = INT32.pack(CANCEL_REQUEST_CODE) + INT32.pack(self.pid) + self.secret
        return INT32.pack(len(body) + 4) + body

    @classmethod
    def decode(cls, body: bytes) -> BackendKey:
        return cls(pid=INT32.unpack_from(body, 0)[0], secret=bytes(body[4:]))

    @classmethod
    def from_cancel_request(cls, packet: bytes) -> BackendKey:
        """Read the key out of a full CancelRequest packet (length prefix included);
        ValueError when it is too short to hold one."""
        if len(packet) < 12:
            raise ValueError("CancelRequest too short")
        return cls(pid=INT32.unpack_from(packet, 8)[0], secret=bytes(packet[12:]))
