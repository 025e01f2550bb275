"""One client session: the startup handshake, then the relay.

Session mode: each client gets its own upstream connection for its whole life. The
client's StartupMessage is forwarded as it was sent and the upstream's
authentication exchange (trust, cleartext, md5, SCRAM-SHA-256) is relayed message by
message, so the proxy never needs a copy of any password.

After ReadyForQuery the relay forwards the client's complete messages byte-for-byte,
checking only each message's type and length (a frame PostgreSQL would reject never
reaches it) and counting the messages that will each be answered by one
ReadyForQuery, so the session always knows whether the upstream is busy.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import TYPE_CHECKING

from proxy.backend.channel import UpstreamChannel
from proxy.backend.upstream import UpstreamProtocol, connect_upstream, send_cancel
from proxy.frontend.intercept import BoundWrite, Interceptor, PreparedWrite, next_message
from proxy.wire.framing import (
    FRONTEND_AUTH_TYPES,
    FRONTEND_READY_TYPES,
    FRONTEND_SMALL_TYPES,
    HEADER,
    INT32,
    MAX_AUTH_MESSAGE,
    MAX_SMALL_MESSAGE,
    MAX_STARTUP_PACKET,
    frame_problem,
    message,
)
from proxy.wire.messages import extended
from proxy.wire.messages.backend_key_data import BackendKey
from proxy.wire.messages.bind import portal_and_statement
from proxy.wire.messages.error_response import PgError, protocol_violation
from proxy.wire.messages.parse import Parse, statement_name
from proxy.wire.messages.ready_for_query import IDLE
from proxy.wire.messages.startup import (
    CANCEL_REQUEST_CODE,
    GSSENC_REQUEST_CODE,
    SSL_REQUEST_CODE,
    StartupError,
    parse_startup,
)
from proxy.writes.executor import ApiChange, compensate_all

if TYPE_CHECKING:
    from proxy.worker import WorkerContext

log = logging.getLogger(__name__)

TERMINATE = b"X"
QUERY, PARSE, BIND, EXECUTE, CLOSE, DESCRIBE = b"QPBECD"
#: Extended-protocol messages answered before the next Sync (tracked while watching).
REPLIED = frozenset((PARSE, BIND, EXECUTE, CLOSE, DESCRIBE))
#: Messages that may start or use a synced write.
WATCHED = frozenset((QUERY, PARSE, BIND, EXECUTE, CLOSE))
TERMINATE_TYPE = TERMINATE[0]
#: Messages each answered by exactly one ReadyForQuery.
SYNC_POINTS = frozenset(b"QSF")
AUTH_OK = 0
#: Authentication requests the client must answer with one 'p' message (cleartext,
#: MD5, GSS, GSS continue, SSPI, SASL, SASL continue).
AUTH_NEEDS_RESPONSE = frozenset({3, 5, 7, 8, 9, 10, 11})
PROTOCOL_3_2 = (3 << 16) | 2
LONG_SECRET = 32
SHORT_SECRET = 4


class State(enum.Enum):
    STARTUP = "startup"
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    CLOSED = "closed"


class ClientSession(asyncio.Protocol):
    """The client side of one session, and the owner of its upstream connection."""

    def __init__(self, ctx: WorkerContext) -> None:
        self._ctx = ctx
        self._state = State.STARTUP
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._upstream: UpstreamProtocol | None = None
        self._upstream_key: BackendKey | None = None
        self._key: BackendKey | None = None
        self._protocol_version = 0
        self._auth_ok = False
        self._awaiting_password = False
        self._terminating = False
        self.pending_syncs = 0
        self.tx_status = IDLE
        self._max_message = ctx.settings.max_message_bytes
        self._connect_task: asyncio.Task[None] | None = None
        self._handshake_timer: asyncio.TimerHandle | None = None
        # Synced writes (only when synced tables are configured; the relay stays lean).
        self.router = ctx.router
        self.statements: dict[str, PreparedWrite] = {}
        self.portals: dict[str, BoundWrite] = {}
        self.skip_until_sync = False
        #: A block the proxy opened for the client's implicit transaction (see
        #: Interceptor._open_batch_block), with the API changes made inside it.
        self.batch_block: list[ApiChange] | None = None
        #: Whether a statement ran since the last ReadyForQuery (it may have begun a block).
        self.batch_dirty = False
        self._more_data: asyncio.Future[None] | None = None
        self._intercepting = False
        self._unsynced: list[tuple[int, int]] = []
        self._idle_waiter: asyncio.Future[None] | None = None

    # -- client transport ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._ctx.sessions.add(self)
        # As PostgreSQL's authentication_timeout: a stalled handshake holds no socket.
        self._handshake_timer = asyncio.get_running_loop().call_later(
            self._ctx.settings.authentication_timeout, self._handshake_timed_out
        )

    def _handshake_timed_out(self) -> None:
        if self._state is not State.READY and self._state is not State.CLOSED:
            log.info("closing a client that did not finish authentication in time")
            self._fail(
                PgError(
                    "08006", "canceling authentication due to timeout", severity="FATAL"
                ).encode()
            )

    def data_received(self, data: bytes) -> None:
        if self._state is State.READY:
            if self._intercepting:
                self._buf += data  # the interceptor reads it before handing back
                self._wake_interceptor()
                return
            self._relay_client(data)
            return
        if self._state is State.CLOSED:
            return
        self._buf += data
        if self._state is State.STARTUP:
            self._read_startup()
        elif self._awaiting_password:
            self._relay_auth_responses()
        elif len(self._buf) > MAX_AUTH_MESSAGE + MAX_STARTUP_PACKET:
            self._fail(protocol_violation("unexpected data before the session was ready"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = State.CLOSED
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
        self._wake_interceptor()
        self._abandon_batch_block()
        self._ctx.sessions.discard(self)
        if self._key is not None:
            self._ctx.cancels.release(self._key)
        if self._connect_task is not None:
            self._connect_task.cancel()
        upstream = self._upstream
        if upstream is None or upstream.transport is None or upstream.transport.is_closing():
            return
        if self.pending_syncs and self._upstream_key is not None:
            # Free the upstream backend now instead of when its query finishes.
            self._ctx.spawn(self.cancel_upstream())
        elif self._auth_ok and upstream.at_boundary:
            # Before AuthenticationOk the server reads only a password: just close.
            upstream.transport.write(message(TERMINATE))
        upstream.transport.close()

    def pause_writing(self) -> None:
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.resume_reading()

    # -- startup ------------------------------------------------------------

    def _read_startup(self) -> None:
        buf = self._buf
        while self._state is State.STARTUP and len(buf) >= 4:
            length = INT32.unpack_from(buf, 0)[0]
            if not 8 <= length <= MAX_STARTUP_PACKET:
                self._fail(protocol_violation("invalid length of startup packet"))
                return
            if len(buf) < length:
                return
            packet = bytes(buf[:length])
            del buf[:length]
            code = INT32.unpack_from(packet, 4)[0]
            if code in (SSL_REQUEST_CODE, GSSENC_REQUEST_CODE) and length == 8:
                if buf:
                    # As PostgreSQL: plaintext pipelined behind an encryption request
                    # could be injected by a man in the middle.
                    self._fail(protocol_violation("received unencrypted data after SSL request"))
                    return
                self._write(b"N")
            elif code == CANCEL_REQUEST_CODE and length >= 16:
                self._state = State.CLOSED
                self._ctx.spawn(self._ctx.cancels.cancel(packet))
                self._close()
            else:
                self._begin_session(packet)

    def _begin_session(self, packet: bytes) -> None:
        try:
            startup = parse_startup(packet)
        except StartupError as exc:
            self._fail(PgError(exc.sqlstate, str(exc), severity="FATAL").encode())
            return
        self._protocol_version = startup.version
        self._state = State.CONNECTING
        self._connect_task = self._ctx.spawn(self._connect(startup.raw))

    async def _connect(self, startup_packet: bytes) -> None:
        try:
            upstream = await connect_upstream(
                self._ctx.upstream, self, self._ctx.settings.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            log.warning("cannot reach upstream %s: %s", self._ctx.upstream.host, exc)
            self._fail(
                PgError(
                    "08006",
                    "could not connect to the upstream server",
                    severity="FATAL",
                    detail=str(exc) or type(exc).__name__,
                ).encode()
            )
            return
        if self._state is State.CLOSED:
            if upstream.transport is not None:
                upstream.transport.close()
            return
        self._upstream = upstream
        self._state = State.AUTHENTICATING
        assert upstream.transport is not None
        upstream.transport.write(startup_packet)

    def _relay_auth_responses(self) -> None:
        """Forward the one password/SASL message the server asked for; anything sent
        before it is asked stays buffered (for a trust user it is ordinary traffic)."""
        buf = self._buf
        assert self._upstream is not None and self._upstream.transport is not None
        while self._awaiting_password and len(buf) >= 5:
            kind, length = HEADER.unpack_from(buf, 0)
            if kind[0] not in FRONTEND_AUTH_TYPES or not 4 <= length <= MAX_AUTH_MESSAGE:
                self._fail(
                    protocol_violation(f"expected password response, got message type {kind[0]}")
                )
                return
            if len(buf) < 1 + length:
                return
            self._upstream.transport.write(bytes(buf[: 1 + length]))
            del buf[: 1 + length]
            self._awaiting_password = False

    # -- upstream events (UpstreamListener) -----------------------------------

    def upstream_startup_message(self, kind: int, body: bytes) -> None:
        if self._state is State.CLOSED:
            return  # e.g. the client's answer to an auth request was refused
        if kind == ord("K"):
            self._upstream_key = BackendKey.decode(body)
            long_keys = self._protocol_version >= PROTOCOL_3_2 and len(body) > 8
            self._key = self._ctx.cancels.issue(self, LONG_SECRET if long_keys else SHORT_SECRET)
            self._write(self._key.encode())
            return
        self._write(message(bytes((kind,)), body))
        if kind == ord("R"):
            code = INT32.unpack_from(body, 0)[0]
            if code == AUTH_OK:
                self._auth_ok = True
            elif code in AUTH_NEEDS_RESPONSE:
                self._awaiting_password = True
                self._relay_auth_responses()
        elif kind == ord("Z"):
            self._become_ready(body[0])

    def _become_ready(self, status: int) -> None:
        assert self._upstream is not None
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
        self._state = State.READY
        self.tx_status = status
        self._upstream.start_relaying()
        if self._buf:
            pending, self._buf = bytes(self._buf), bytearray()
            self._relay_client(pending)

    def upstream_data(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def upstream_ready(self, status: int) -> None:
        self.tx_status = status
        if self.pending_syncs:
            self.pending_syncs -= 1
        self.batch_dirty = False
        if not self.pending_syncs and self._idle_waiter is not None:
            self._idle_waiter.set_result(None)
            self._idle_waiter = None
        if self._ctx.draining and status == IDLE and not self.pending_syncs:
            self.terminate()

    def upstream_lost(self, at_boundary: bool, last_kind: int) -> None:
        self._abandon_batch_block()
        if self._state is State.CLOSED or self._transport is None:
            return
        self._state = State.CLOSED
        if at_boundary and last_kind != ord("E") and not self._terminating:
            self._write(
                PgError(
                    "08006",
                    "server closed the connection unexpectedly",
                    severity="FATAL",
                    detail="The upstream PostgreSQL connection was lost.",
                ).encode()
            )
        self._close()

    def upstream_pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def upstream_resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    # -- steady state -------------------------------------------------------

    def _relay_client(self, data: bytes) -> None:
        """Forward every complete client message; keep a partial one for later."""
        buf = self._buf
        if buf:
            buf += data
            data = buf
        n = len(data)
        pos = 0
        syncs = 0
        limit = self._max_message
        watch = self.router is not None
        while n - pos >= 5:
            kind = data[pos]
            length = INT32.unpack_from(data, pos + 1)[0]
            if (
                kind not in FRONTEND_READY_TYPES
                or not 4 <= length <= limit
                or (length > MAX_SMALL_MESSAGE and kind in FRONTEND_SMALL_TYPES)
            ):
                self._forward(data, pos, syncs)
                self._fail(protocol_violation(frame_problem(kind, length, limit) or ""))
                return
            end = pos + 1 + length
            if end > n:
                break
            if watch:
                if kind in WATCHED and self._involves_synced_table(kind, data[pos + 5 : end]):
                    self._forward(data, pos, syncs)
                    self._buf = bytearray(data[pos:])
                    self._start_intercept()
                    return
                if kind in SYNC_POINTS:
                    self._unsynced.clear()
                elif kind in REPLIED:
                    # Only messages that get replies: COPY data never piles up here.
                    self._unsynced.append((kind, data[pos + 5] if kind == DESCRIBE else 0))
                    if kind == EXECUTE:
                        self.batch_dirty = True
            if kind in SYNC_POINTS:
                syncs += 1
            elif kind == TERMINATE_TYPE:
                self._terminating = True  # the upstream will close: that is no error
            pos = end
        self._forward(data, pos, syncs)
        if pos == n:
            if buf:
                # The transport may still hold this very buffer (uvloop queues it
                # without copying when the upstream is behind): never resize it.
                self._buf = bytearray()
        elif not buf:
            self._buf = bytearray(data[pos:])
        else:
            del buf[:pos]

    def _involves_synced_table(self, kind: int, body: bytes) -> bool:
        """Does this message start or use a statement that may write a synced table?"""
        assert self.router is not None
        if kind == QUERY:
            return not self.router.classify(body[:-1].decode(errors="surrogateescape")).passthrough
        if kind == PARSE:
            if not self.router.classify(Parse.decode(body).query).passthrough:
                return True
            if self.statements:
                self.statements.pop(statement_name(body), None)
            return False
        if not self.statements:
            return False
        if kind == BIND:
            portal, statement = portal_and_statement(body)
            if statement in self.statements:
                return True
            self.portals.pop(portal, None)
            return False
        if kind == EXECUTE:
            return extended.execute_portal(body) in self.portals
        target, name = extended.target_name(body)  # Close
        (self.statements if target == ord("S") else self.portals).pop(name, None)
        return False

    # -- interception (see proxy.frontend.intercept) ----------------------------

    def _start_intercept(self) -> None:
        self._intercepting = True
        self._ctx.spawn(self._intercept())

    def _abandon_batch_block(self) -> None:
        """The connection ended inside a block the proxy opened: PostgreSQL rolls it
        back, so the API changes recorded in it are compensated."""
        changes, self.batch_block = self.batch_block, None
        if changes:
            self._ctx.spawn(compensate_all(changes))

    def _wake_interceptor(self) -> None:
        waiter, self._more_data = self._more_data, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _until_in_step(self) -> None:
        """Wait until the upstream has answered every Sync/Query relayed so far."""
        while self.pending_syncs:
            self._idle_waiter = asyncio.get_running_loop().create_future()
            await self._idle_waiter
        assert self._upstream is not None
        while not self._upstream.at_boundary:
            await asyncio.sleep(0.001)

    async def _intercept(self) -> None:
        upstream = self._upstream
        assert upstream is not None
        try:
            await self._until_in_step()
            channel = UpstreamChannel(upstream, self.send_message)
            interceptor = Interceptor(self, channel)
            try:
                unsynced, self._unsynced = self._unsynced, []
                await interceptor.drain_unsynced(unsynced)
                while self._state is State.READY:
                    if len(self._buf) >= 5:
                        kind_byte, length = HEADER.unpack_from(self._buf, 0)
                        problem = frame_problem(kind_byte[0], length, self._max_message)
                        if problem is not None:
                            self._fail(protocol_violation(problem))
                            return
                    item = next_message(self._buf)
                    if item is None:
                        if self.batch_block is None:
                            break
                        # Stay in step until the client's Sync ends the proxy's block.
                        self._more_data = asyncio.get_running_loop().create_future()
                        await self._more_data
                        continue
                    kind, raw = item
                    if not await interceptor.process(kind, raw):
                        break
            finally:
                if self._state is State.READY:
                    channel.close()
        except (ConnectionResetError, OSError):
            self._close()
            return
        except Exception:
            log.exception("synced write handling failed; closing the session")
            self._fail(PgError("XX000", "internal error in writeproxy", severity="FATAL").encode())
            return
        finally:
            self._intercepting = False
        if self._state is State.READY and self._buf:
            pending, self._buf = bytes(self._buf), bytearray()
            self._relay_client(pending)

    def send_message(self, kind: int, body: bytes) -> None:
        self._write(message(bytes((kind,)), body))

    def send_raw(self, data: bytes) -> None:
        self._write(data)

    def _forward(self, data: bytes | bytearray, end: int, syncs: int) -> None:
        if not end:
            return
        upstream = self._upstream
        assert upstream is not None and upstream.transport is not None
        upstream.transport.write(data if end == len(data) else data[:end])
        self.pending_syncs += syncs

    # -- control ------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Not inside a transaction nor waiting for a reply: safe to close."""
        if self._state is not State.READY:
            return True
        return not self.pending_syncs and self.tx_status == IDLE

    async def cancel_upstream(self) -> None:
        """Send the upstream a CancelRequest for this session's running query."""
        if self._upstream_key is None:
            return
        try:
            await send_cancel(
                self._ctx.upstream,
                self._upstream_key.cancel_request(),
                self._ctx.settings.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            log.warning("cancel request to upstream failed: %s", exc)

    def terminate(self) -> None:
        """Close the session the way PostgreSQL does on shutdown."""
        if self._state is State.CLOSED:
            return
        if self._state is State.READY and self._upstream is not None and self._upstream.at_boundary:
            self._write(
                PgError(
                    "57P01", "terminating connection due to administrator command", severity="FATAL"
                ).encode()
            )
        self._close()

    def _fail(self, error: bytes) -> None:
        self._write(error)
        self._close()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _close(self) -> None:
        self._state = State.CLOSED
        if self._transport is not None:
            self._transport.close()
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.close()
