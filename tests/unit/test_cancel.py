"""proxy.cancel: sessions registered under the upstream's own key; a cancel is executed
by the worker that owns the key (asked over the peers' sockets), and only when none does
is it forwarded to the upstream as it is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from proxy.cancel import MAX_WORKERS, CancelRegistry
from proxy.wire.messages.backend_key_data import BackendKey


class Session:
    def __init__(self) -> None:
        self.cancelled = 0

    async def cancel_upstream(self) -> None:
        self.cancelled += 1


class Upstream:
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    async def __call__(self, packet: bytes) -> None:
        self.packets.append(packet)


KEY = BackendKey(4242, b"\x01\x02\x03\x04")
LONG_KEY = BackendKey(4343, bytes(range(32)))  # protocol 3.2


def test_worker_index_bounds() -> None:
    for index in (-1, MAX_WORKERS):
        with pytest.raises(ValueError):
            CancelRegistry(index, None)


@pytest.mark.parametrize("key", [KEY, LONG_KEY])
async def test_the_owner_cancels_its_session_and_nothing_goes_upstream(key: BackendKey) -> None:
    upstream = Upstream()
    registry = CancelRegistry(0, None, upstream)
    session = Session()
    registry.register(session, key)
    await registry.cancel(key.cancel_request())
    assert session.cancelled == 1 and upstream.packets == []


async def test_a_wrong_secret_for_a_known_pid_is_ignored() -> None:
    upstream = Upstream()
    registry = CancelRegistry(0, None, upstream)
    session = Session()
    registry.register(session, KEY)
    await registry.cancel(BackendKey(KEY.pid, b"nope").cancel_request())
    assert session.cancelled == 0 and upstream.packets == []


async def test_an_unknown_key_goes_to_the_upstream_as_it_is() -> None:
    """A replica's session behind the same load balancer, or one already gone: the
    server checks the secret."""
    upstream = Upstream()
    registry = CancelRegistry(0, None, upstream)
    registry.register(Session(), KEY)
    registry.release(KEY)
    await registry.cancel(KEY.cancel_request())
    await registry.cancel(LONG_KEY.cancel_request())
    assert upstream.packets == [KEY.cancel_request(), LONG_KEY.cancel_request()]
    await registry.cancel(b"\x00\x00\x00\x08abcd")  # malformed: ignored
    assert len(upstream.packets) == 2


async def test_another_worker_owns_the_key(tmp_path: Path) -> None:
    upstream = Upstream()
    owner = CancelRegistry(1, tmp_path, upstream, workers=2)
    other = CancelRegistry(0, tmp_path, upstream, workers=2)
    await owner.serve_peers()
    await other.serve_peers()
    try:
        session = Session()
        owner.register(session, KEY)
        await other.cancel(KEY.cancel_request())
        assert session.cancelled == 1 and upstream.packets == []
        # Known to the owner, wrong secret: nobody cancels, nothing goes upstream.
        await other.cancel(BackendKey(KEY.pid, b"xxxx").cancel_request())
        assert session.cancelled == 1 and upstream.packets == []
        # Unknown to every worker: upstream.
        await other.cancel(LONG_KEY.cancel_request())
        assert upstream.packets == [LONG_KEY.cancel_request()]
    finally:
        owner.close()
        other.close()
        await asyncio.sleep(0)


async def test_a_dead_peer_does_not_stop_the_cancel(tmp_path: Path) -> None:
    upstream = Upstream()
    registry = CancelRegistry(0, tmp_path, upstream, workers=3)  # peers 1, 2 never started
    await registry.cancel(KEY.cancel_request())
    assert upstream.packets == [KEY.cancel_request()]
