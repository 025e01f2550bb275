"""One client session: the asyncio protocol that owns the client socket and the
session's upstream connection, and moves through one explicit ``Phase``.

Session mode: each client gets its own upstream connection for its whole life. The
work of each phase lives in its own module — ``handshake`` (startup, authentication),
``relay`` (the steady state, bytes forwarded as they come) and ``driver`` (the proxy
drives the session around a synced write) — and this class only routes events to the
phase that handles them and owns the lifecycle (close, terminate, cancel).
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from proxy import metrics
from proxy.backend.upstream import UpstreamProtocol, send_cancel
from proxy.frontend.context import WorkerContext
from proxy.frontend.driver import InterceptionDriver
from proxy.frontend.handshake import Handshake
from proxy.frontend.phase import READY_PHASES, Phase, check_move
from proxy.frontend.relay import ClientRelay
from proxy.frontend.state import Conversation, SyncedState
from proxy.logcontext import for_session, new_session_id
from proxy.wire.codes import Backend, Frontend
from proxy.wire.encodings import codec_for
from proxy.wire.framing import message
from proxy.wire.messages.error_response import PgError
from proxy.wire.messages.parameter_status import CLIENT_ENCODING, parse_parameter_status
from proxy.wire.messages.ready_for_query import IDLE

log = logging.getLogger(__name__)

_TERMINATE = message(Frontend.TERMINATE.byte)


class ClientSession(asyncio.Protocol):
    """The client side of one session, and the owner of its upstream connection."""

    def __init__(self, ctx: WorkerContext) -> None:
        self._ctx = ctx
        self._phase = Phase.STARTUP
        self._transport: asyncio.Transport | None = None
        self._upstream: UpstreamProtocol | None = None
        self._handshake: Handshake | None = None
        self._relay: ClientRelay | None = None
        self._driver: InterceptionDriver | None = None
        self.conv = Conversation()
        router = ctx.router
        self.synced = SyncedState() if router is not None else None
        self._more_data: asyncio.Future[None] | None = None
        self._idle_waiter: asyncio.Future[None] | None = None
        self._reading = True  # see _set_reading
        self._counted = False  # in the client-connections gauge
        #: Its tasks run in this context, so their log lines name the session.
        self.session_id = new_session_id()
        self.log_context = for_session(self.session_id)

    # -- phase ----------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self._phase

    def set_phase(self, phase: Phase) -> None:
        self._phase = check_move(self._phase, phase)

    # -- client transport -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        # As PostgreSQL past max_connections (and PgBouncer past max_client_conn): the
        # client is refused with 53300 once its startup packet is read.
        over_limit = len(self._ctx.sessions) >= self._ctx.max_sessions
        self._counted = not over_limit
        metrics.client_connected(1, refused=over_limit)
        if over_limit:
            self.log_context.run(
                log.warning,
                "refusing a client: %d connections open (max_client_conn)",
                len(self._ctx.sessions),
            )
        self._ctx.sessions.add(self)
        self._handshake = Handshake(self, self._ctx, over_limit=over_limit)

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase is Phase.RELAYING:
            assert self._relay is not None
            self._relay.client_data(data)
        elif phase is Phase.INTERCEPTING:
            assert self._relay is not None
            self._relay.buf += data  # the driver reads it before handing back
            if len(self._relay.buf) > self._ctx.settings.max_buffered_input_bytes:
                # Read no further ahead while the proxy drives the session (a client
                # may pipeline gigabytes): reading resumes when the driver wants more.
                self._set_reading(False)
            self._wake(self._more_data)
        elif phase is not Phase.CLOSED:
            assert self._handshake is not None
            self._handshake.client_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        finishing_commit = (
            self._phase is Phase.INTERCEPTING
            and self.synced is not None
            and self.synced.ledger.committing
        )
        self._phase = Phase.CLOSED
        if self._counted:
            self._counted = False
            metrics.client_connected(-1)
        if self._handshake is not None:
            self._handshake.stop()
        self._wake(self._more_data)
        self._wake(self._idle_waiter)
        self._end_transaction()
        self._ctx.sessions.discard(self)
        upstream = self._upstream
        if upstream is None or upstream.transport is None or upstream.transport.is_closing():
            return
        if finishing_commit:
            # The vendor archives are made: the COMMIT goes through, then the upstream
            # is closed (see _intercept).
            return
        if self.conv.pending_syncs and self._upstream_key_known:
            # Free the upstream backend now instead of when its query finishes.
            self._ctx.spawn(self.cancel_upstream(), context=self.log_context)
        elif self._handshake is not None and self._handshake.auth_ok and upstream.at_boundary:
            # Before AuthenticationOk the server reads only a password: just close.
            upstream.transport.write(_TERMINATE)
        upstream.transport.close()

    def pause_writing(self) -> None:
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.resume_reading()

    # -- upstream events (UpstreamListener) ---------------------------------------

    def upstream_attached(self, upstream: UpstreamProtocol) -> None:
        self._upstream = upstream

    def upstream_startup_message(self, kind: int, body: bytes) -> None:
        if self._phase is Phase.CLOSED or self._handshake is None:
            return  # e.g. the client's answer to an auth request was refused
        if kind == Backend.PARAMETER_STATUS:
            self.upstream_parameter(body)
        self._handshake.upstream_message(kind, body)

    def upstream_parameter(self, body: bytes) -> None:
        """The server reported a parameter; the session follows its client_encoding."""
        name, value = parse_parameter_status(body)
        if name == CLIENT_ENCODING:
            self.conv.encoding = codec_for(value)

    def handshake_done(self, status: int) -> None:
        upstream = self._upstream
        handshake = self._handshake
        assert upstream is not None and upstream.transport is not None and handshake is not None
        self.set_phase(Phase.RELAYING)
        self.conv.tx_status = status
        router = self._ctx.router
        if router is not None and handshake.database != router.tables.database:
            # Another database on the same server: its tables are ordinary tables.
            router, self.synced = None, None
        self._relay = ClientRelay(
            upstream.transport,
            self.conv,
            self._ctx.settings.max_message_bytes,
            router,
            self.synced,
            self.fail,
            self._start_intercept,
        )
        if router is not None and self.synced is not None:
            executor = router.executor
            self._driver = InterceptionDriver(
                self,
                router,
                self.conv,
                self.synced,
                executor,
                executor.archives,
                self._ctx.settings.max_message_bytes,
            )
        upstream.start_relaying()
        if handshake.buf:
            pending, handshake.buf = bytes(handshake.buf), bytearray()
            self._relay.client_data(pending)

    def upstream_data(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def upstream_ready(self, status: int) -> None:
        conv = self.conv
        if conv.pending_syncs:
            conv.pending_syncs -= 1
        self.on_ready(status)
        if not conv.pending_syncs and self._idle_waiter is not None:
            self._wake(self._idle_waiter)
            self._idle_waiter = None
        if self._ctx.draining and status == IDLE and not conv.pending_syncs:
            self.terminate()

    def on_ready(self, status: int) -> None:
        """A ReadyForQuery reached the client (relayed, or made by the proxy)."""
        self.conv.tx_status = status
        synced = self.synced
        if synced is not None:
            synced.ledger.dirty = False
            synced.ledger.client_began = False
            synced.ledger.committing = False
            if status == IDLE and synced.catalog_changed:
                synced.catalog_changed = False
                self._ctx.catalog_changed()
            if status == IDLE:
                # Portals do not outlive their transaction; nor does the ledger.
                synced.portals.clear()
                synced.done_portals.clear()
                synced.control_portals.clear()
                xid, entries = synced.ledger.end()
                if entries:
                    assert self._ctx.router is not None
                    self._ctx.router.executor.ended(xid, entries)

    def upstream_lost(self, at_boundary: bool, last_kind: int) -> None:
        self._wake(self._idle_waiter)
        self._end_transaction()
        if self._phase is Phase.CLOSED or self._transport is None:
            return
        self._phase = Phase.CLOSED
        if at_boundary and last_kind != Backend.ERROR_RESPONSE and not self.conv.terminating:
            self.write(
                PgError(
                    "08006",
                    "server closed the connection unexpectedly",
                    severity="FATAL",
                    detail="The upstream PostgreSQL connection was lost.",
                ).encode()
            )
        self.close()

    def upstream_pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def upstream_resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    # -- interception (see proxy.frontend.driver) ---------------------------------

    def _start_intercept(self) -> None:
        self.set_phase(Phase.INTERCEPTING)
        self._ctx.spawn(self._intercept(), context=self.log_context)

    async def _intercept(self) -> None:
        assert self._driver is not None and self._relay is not None
        assert self._upstream is not None
        await self._driver.run(self._upstream, self._relay.buf)
        if self._phase is Phase.CLOSED:
            self.close()  # e.g. a COMMIT finished for a client that went away
            return
        if self._phase is not Phase.INTERCEPTING:
            return
        self.set_phase(Phase.RELAYING)
        self._set_reading(True)
        relay = self._relay
        if relay.buf:
            pending, relay.buf = bytes(relay.buf), bytearray()
            relay.client_data(pending)

    async def until_in_step(self) -> None:
        """Wait until the upstream has answered every Sync/Query relayed so far."""
        while self.conv.pending_syncs:
            if self._phase is Phase.CLOSED:
                raise ConnectionResetError("the session ended")
            self._idle_waiter = asyncio.get_running_loop().create_future()
            await self._idle_waiter
        assert self._upstream is not None
        while not self._upstream.at_boundary:
            await asyncio.sleep(0.001)

    async def more_data(self) -> None:
        """Wait for the client's next bytes (or the end of the session)."""
        self._more_data = asyncio.get_running_loop().create_future()
        self._set_reading(True)
        await self._more_data

    def _set_reading(self, reading: bool) -> None:
        """Pause or resume reading the client for the input cap (not for TLS or
        upstream back-pressure, which pause and resume on their own)."""
        transport = self._transport
        if transport is None or transport.is_closing() or reading == self._reading:
            return
        self._reading = reading
        if reading:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def _end_transaction(self) -> None:
        """The connection ended: PostgreSQL rolls back an open transaction, so its
        journal entries are resolved (they wait while the server still has it open)."""
        synced = self.synced
        if synced is None:
            return
        xid, entries = synced.ledger.end()
        if entries:
            assert self._ctx.router is not None
            self._ctx.router.executor.ended(xid, entries)

    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- writing to the client ------------------------------------------------------

    def send_message(self, kind: int, body: bytes) -> None:
        self.write(message(bytes((kind,)), body))

    def send_raw(self, data: bytes) -> None:
        self.write(data)

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def hold_reading(self) -> None:
        """Read nothing more from the client until ``start_tls`` took over the socket."""
        if self._transport is not None:
            self._transport.pause_reading()

    async def start_tls(self, context: ssl.SSLContext) -> bool:
        """Upgrade the client socket (after answering ``S``); False if the client
        went away or its TLS handshake failed (the session is then closed)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return False
        loop = asyncio.get_running_loop()
        try:
            secure = await loop.start_tls(transport, self, context, server_side=True)
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self.log_context.run(log.info, "client TLS handshake failed: %s", exc)
            self.close()
            return False
        if secure is None:
            self.close()
            return False
        self._transport = secure
        return True

    # -- control ----------------------------------------------------------------------

    @property
    def _upstream_key_known(self) -> bool:
        return self._handshake is not None and self._handshake.upstream_key is not None

    @property
    def idle(self) -> bool:
        """Not inside a transaction nor waiting for a reply: safe to close."""
        if self._phase not in READY_PHASES:
            return True
        return not self.conv.pending_syncs and self.conv.tx_status == IDLE

    async def cancel_upstream(self) -> None:
        """Send the upstream a CancelRequest for this session's running query (and
        tell a synced statement waiting for the vendor: PostgreSQL would not see it)."""
        if self.synced is not None:
            self.synced.ledger.cancel_requested = True
        handshake = self._handshake
        if handshake is None or handshake.upstream_key is None:
            return
        try:
            await send_cancel(
                self._ctx.upstream,
                handshake.upstream_key.cancel_request(),
                self._ctx.settings.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            log.warning("cancel request to upstream failed: %s", exc)

    def terminate(self) -> None:
        """Close the session the way PostgreSQL does on shutdown."""
        if self._phase is Phase.CLOSED:
            return
        upstream = self._upstream
        if self._phase in READY_PHASES and upstream is not None and upstream.at_boundary:
            self.write(
                PgError(
                    "57P01", "terminating connection due to administrator command", severity="FATAL"
                ).encode()
            )
        self.close()

    def fail(self, error: bytes) -> None:
        self.write(error)
        self.close()

    def close(self) -> None:
        self._phase = Phase.CLOSED
        if self._transport is not None:
            self._transport.close()
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.close()
