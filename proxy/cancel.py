"""Cancel keys: clients get the upstream server's own BackendKeyData, unchanged (pid and
secret, protocol 3.2's longer secrets too), so ``pg_backend_pid()``, NOTIFY's pid and
``pg_terminate_backend(conn.info.backend_pid)`` agree with what the driver was told.

A CancelRequest may reach any worker (SO_REUSEPORT spreads connections at random) or
any replica behind a load balancer. The worker that owns the session acts on it
itself — a synced statement waiting for the vendor must hear of it, PostgreSQL would
not see it — so a worker that does not know the key asks its peers over their Unix
sockets in the shared runtime directory, and only when none owns it forwards the packet
to the upstream as it is (PostgreSQL checks the secret; a replica's session is
cancelled there).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from proxy.wire.framing import INT32
from proxy.wire.messages.backend_key_data import BackendKey

log = logging.getLogger(__name__)

MAX_WORKERS = 126
CANCEL_PACKET_MAX = 8 + 4 + 256
PEER_TIMEOUT = 2.0
OWNED, NOT_OWNED = b"Y", b"N"

#: Delivers a CancelRequest packet to the upstream server.
SendUpstream = Callable[[bytes], Awaitable[None]]


class Cancellable(Protocol):
    async def cancel_upstream(self) -> None: ...


def peer_socket_path(runtime_dir: Path, worker_index: int) -> Path:
    return runtime_dir / f"cancel-{worker_index}.sock"


async def _nowhere(packet: bytes) -> None:
    return None


class CancelRegistry:
    """This worker's sessions by their upstream key, and the cancels it executes."""

    def __init__(
        self,
        worker_index: int,
        runtime_dir: Path | None,
        send_upstream: SendUpstream = _nowhere,
        workers: int = 1,
    ) -> None:
        if not 0 <= worker_index < MAX_WORKERS:
            raise ValueError(f"worker index must be below {MAX_WORKERS}")
        self._worker_index = worker_index
        self._runtime_dir = runtime_dir
        self._send_upstream = send_upstream
        self._workers = workers
        self._sessions: dict[int, tuple[bytes, Cancellable]] = {}
        self._peer_server: asyncio.AbstractServer | None = None

    def register(self, session: Cancellable, key: BackendKey) -> None:
        """The session's upstream key, as the client was given it."""
        self._sessions[key.pid] = (key.secret, session)

    def release(self, key: BackendKey) -> None:
        entry = self._sessions.get(key.pid)
        if entry is not None and entry[0] == key.secret:
            del self._sessions[key.pid]

    async def cancel(self, packet: bytes) -> None:
        """Act on a CancelRequest packet (length prefix included) from a client."""
        if await self._cancel_own(packet):
            return
        for index in range(self._workers):
            if index != self._worker_index and await self._ask_peer(index, packet):
                return
        try:
            await self._send_upstream(packet)
        except (OSError, TimeoutError) as exc:
            log.warning("cancel request to upstream failed: %s", exc)

    async def _cancel_own(self, packet: bytes) -> bool:
        try:
            key = BackendKey.from_cancel_request(packet)
        except ValueError:
            return True  # malformed: like PostgreSQL, silently ignored
        entry = self._sessions.get(key.pid)
        # Like PostgreSQL, a wrong key is silently ignored (and not passed on).
        if entry is None:
            return False
        if hmac.compare_digest(entry[0], key.secret):
            await entry[1].cancel_upstream()
        return True

    async def _ask_peer(self, owner: int, packet: bytes) -> bool:
        """Whether worker ``owner`` owns the key (it then cancels the session)."""
        if self._runtime_dir is None:
            return False
        path = peer_socket_path(self._runtime_dir, owner)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(path)), PEER_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            log.debug("cannot ask worker %d about a cancel: %s", owner, exc)
            return False
        try:
            writer.write(packet)
            await writer.drain()
            return await asyncio.wait_for(reader.read(1), PEER_TIMEOUT) == OWNED
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()

    async def serve_peers(self) -> None:
        """Answer the other workers' questions about keys."""
        if self._runtime_dir is None:
            return
        path = peer_socket_path(self._runtime_dir, self._worker_index)
        path.unlink(missing_ok=True)
        self._peer_server = await asyncio.start_unix_server(self._from_peer, str(path))

    async def _from_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            header = await reader.readexactly(4)
            length = INT32.unpack(header)[0]
            owned = False
            if 12 <= length <= CANCEL_PACKET_MAX:
                owned = await self._cancel_own(header + await reader.readexactly(length - 4))
            writer.write(OWNED if owned else NOT_OWNED)
            await writer.drain()
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self._peer_server is not None:
            self._peer_server.close()
