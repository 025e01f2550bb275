"""proxy.cancel: proxy-issued cancel keys (3.0 and 3.2 secret lengths), routing by the
pid's worker bits, and forwarding to the owning worker over its Unix socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from proxy.cancel import MAX_WORKERS, WORKER_SHIFT, CancelRegistry, peer_socket_path
from proxy.wire.messages.backend_key_data import BackendKey


class Session:
    def __init__(self) -> None:
        self.cancelled = 0

    async def cancel_upstream(self) -> None:
        self.cancelled += 1


@pytest.mark.parametrize("length", [4, 32, 256])
def test_issued_keys_encode_the_worker_and_have_the_requested_secret(length: int) -> None:
    registry = CancelRegistry(5, None)
    first = registry.issue(Session(), length)
    second = registry.issue(Session(), length)
    assert len(first.secret) == len(second.secret) == length
    assert first.secret != second.secret
    assert first.pid >> WORKER_SHIFT == second.pid >> WORKER_SHIFT == 6
    assert first.pid != second.pid
    assert first.pid < 2**31  # fits PostgreSQL's signed int32 pid


@pytest.mark.parametrize("index", [-1, MAX_WORKERS])
def test_worker_index_is_bounded(index: int) -> None:
    with pytest.raises(ValueError, match="worker index must be below"):
        CancelRegistry(index, None)


async def test_cancel_with_the_right_key_cancels_once() -> None:
    registry = CancelRegistry(0, None)
    session = Session()
    key = registry.issue(session, 32)
    await registry.cancel(key.cancel_request())
    assert session.cancelled == 1


@pytest.mark.parametrize("wrong", [b"\x00" * 32, b"", b"\x00" * 4])
async def test_wrong_secrets_are_ignored(wrong: bytes) -> None:
    registry = CancelRegistry(0, None)
    session = Session()
    key = registry.issue(session, 32)
    await registry.cancel(BackendKey(key.pid, wrong).cancel_request())
    await registry.cancel(BackendKey(key.pid, key.secret[:4]).cancel_request())
    assert session.cancelled == 0


async def test_released_keys_no_longer_cancel() -> None:
    registry = CancelRegistry(0, None)
    session = Session()
    key = registry.issue(session, 4)
    registry.release(key)
    registry.release(key)  # twice is harmless
    await registry.cancel(key.cancel_request())
    assert session.cancelled == 0


async def test_other_workers_keys_without_a_runtime_dir_are_dropped() -> None:
    registry = CancelRegistry(0, None)
    foreign = BackendKey(((3 + 1) << WORKER_SHIFT) | 1, b"s" * 4)
    await registry.cancel(foreign.cancel_request())  # no error, nothing to do
    garbage = BackendKey(0xFFFFFFFF, b"")
    await registry.cancel(garbage.cancel_request())


async def test_cancels_are_forwarded_to_the_owning_worker(tmp_path: Path) -> None:
    owner = CancelRegistry(1, tmp_path)
    other = CancelRegistry(0, tmp_path)
    session = Session()
    key = owner.issue(session, 32)
    await owner.serve_peers()
    try:
        assert peer_socket_path(tmp_path, 1).exists()
        await other.cancel(key.cancel_request())
        for _ in range(100):
            if session.cancelled:
                break
            await asyncio.sleep(0.01)
        assert session.cancelled == 1
        # A forwarded packet with a wrong secret is ignored there too.
        await other.cancel(BackendKey(key.pid, b"x" * 32).cancel_request())
        await asyncio.sleep(0.05)
        assert session.cancelled == 1
    finally:
        owner.close()


async def test_forwarding_to_a_worker_that_is_not_listening_is_dropped(tmp_path: Path) -> None:
    registry = CancelRegistry(0, tmp_path)
    key = BackendKey((2 << WORKER_SHIFT) | 9, b"k" * 4)
    await registry.cancel(key.cancel_request())
