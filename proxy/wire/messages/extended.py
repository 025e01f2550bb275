"""The small extended-protocol messages the proxy sends on its own behalf:
Describe, Execute, Close, Sync and Flush."""

from __future__ import annotations

from proxy.wire.framing import INT32, message

SYNC = message(b"S")
FLUSH = message(b"H")


def describe_portal(name: str = "") -> bytes:
    return message(b"D", b"P" + name.encode() + b"\0")


def describe_statement(name: str = "") -> bytes:
    return message(b"D", b"S" + name.encode() + b"\0")


def close_statement(name: str) -> bytes:
    return message(b"C", b"S" + name.encode() + b"\0")


def close_portal(name: str) -> bytes:
    return message(b"C", b"P" + name.encode() + b"\0")


def execute(portal: str = "", max_rows: int = 0) -> bytes:
    return message(b"E", portal.encode() + b"\0" + INT32.pack(max_rows))


def target_name(body: bytes) -> tuple[int, str]:
    """Describe/Close bodies: the 'S'/'P' kind byte and the object's name."""
    return body[0], body[1 : body.index(b"\0", 1)].decode()


def execute_portal(body: bytes) -> str:
    return body[: body.index(b"\0")].decode()
