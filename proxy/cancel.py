"""Cancel keys: the proxy gives each client its own BackendKeyData and routes a
CancelRequest to the session it names, whichever worker process receives it.

The key's process id encodes the owning worker, so a worker that receives a
CancelRequest for another worker's session forwards the packet over that worker's
Unix socket in the shared runtime directory (SO_REUSEPORT spreads connections, and
so cancels, across workers at random).
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import secrets
from pathlib import Path
from typing import Protocol

from proxy.wire.framing import INT32
from proxy.wire.messages.backend_key_data import BackendKey

log = logging.getLogger(__name__)

WORKER_SHIFT = 24
MAX_WORKERS = 126
CANCEL_PACKET_MAX = 8 + 4 + 256


class Cancellable(Protocol):
    async def cancel_upstream(self) -> None: ...


def peer_socket_path(runtime_dir: Path, worker_index: int) -> Path:
    return runtime_dir / f"cancel-{worker_index}.sock"


class CancelRegistry:
    """Issues proxy cancel keys for this worker's sessions and executes cancels."""

    def __init__(self, worker_index: int, runtime_dir: Path | None) -> None:
        if not 0 <= worker_index < MAX_WORKERS:
            raise ValueError(f"worker index must be below {MAX_WORKERS}")
        self._worker_index = worker_index
        self._runtime_dir = runtime_dir
        self._counter = itertools.count(1)
        self._sessions: dict[int, tuple[bytes, Cancellable]] = {}
        self._peer_server: asyncio.AbstractServer | None = None

    def issue(self, session: Cancellable, secret_length: int) -> BackendKey:
        """A fresh key for ``session``; its pid tells which worker owns it."""
        while True:
            pid = ((self._worker_index + 1) << WORKER_SHIFT) | (
                next(self._counter) & ((1 << WORKER_SHIFT) - 1)
            )
            if pid not in self._sessions:
                break
        key = BackendKey(pid=pid, secret=secrets.token_bytes(secret_length))
        self._sessions[pid] = (key.secret, session)
        return key

    def release(self, key: BackendKey) -> None:
        self._sessions.pop(key.pid, None)

    async def cancel(self, packet: bytes) -> None:
        """Act on a CancelRequest packet (length prefix included) from any client."""
        key = BackendKey.from_cancel_request(packet)
        owner = (key.pid >> WORKER_SHIFT) - 1
        if owner != self._worker_index:
            await self._forward(owner, packet)
            return
        entry = self._sessions.get(key.pid)
        # Like PostgreSQL, a wrong key is silently ignored.
        if entry is not None and hmac.compare_digest(entry[0], key.secret):
            await entry[1].cancel_upstream()

    async def _forward(self, owner: int, packet: bytes) -> None:
        if self._runtime_dir is None or not 0 <= owner < MAX_WORKERS:
            return
        path = peer_socket_path(self._runtime_dir, owner)
        try:
            _, writer = await asyncio.open_unix_connection(str(path))
        except OSError as exc:
            log.debug("cannot forward cancel to worker %d: %s", owner, exc)
            return
        writer.write(packet)
        await writer.drain()
        writer.close()

    async def serve_peers(self) -> None:
        """Accept cancels forwarded by the other workers."""
        if self._runtime_dir is None:
            return
        path = peer_socket_path(self._runtime_dir, self._worker_index)
        path.unlink(missing_ok=True)
        self._peer_server = await asyncio.start_unix_server(self._from_peer, str(path))

    async def _from_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            header = await reader.readexactly(4)
            length = INT32.unpack(header)[0]
            if 12 <= length <= CANCEL_PACKET_MAX:
                await self.cancel(header + await reader.readexactly(length - 4))
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self._peer_server is not None:
            self._peer_server.close()
