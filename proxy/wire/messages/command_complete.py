"""CommandComplete ('C'): the tag that ends a statement's results."""

from __future__ import annotations

from proxy.wire.framing import message


def command_complete(tag: str) -> bytes:
    return message(b"C", tag.encode() + b"\0")
