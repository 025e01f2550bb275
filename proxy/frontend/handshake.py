"""The startup phase of a session: the startup packet, encryption and cancel requests,
opening the upstream connection, and relaying its authentication exchange.

The client's StartupMessage is forwarded as it was sent and the upstream's
authentication exchange (trust, cleartext, md5, SCRAM-SHA-256) is relayed message by
message, so the proxy never needs a copy of any password. The upstream's BackendKeyData
is passed through unchanged (see ``proxy.cancel``). A client's SSLRequest
upgrades the socket to TLS when the proxy has a certificate (``proxy.tls``); SCRAM's
channel-binding variant is withheld from clients, since it binds to the server's TLS
connection, which the client never sees.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import ssl
from dataclasses import replace
from typing import Protocol

from proxy.backend.upstream import UpstreamListener, UpstreamProtocol, connect_upstream
from proxy.frontend.context import WorkerContext
from proxy.frontend.phase import Phase
from proxy.logcontext import set_backend_pid
from proxy.wire.codes import Backend
from proxy.wire.framing import (
    FRONTEND_AUTH_TYPES,
    HEADER,
    INT32,
    MAX_AUTH_MESSAGE,
    MAX_STARTUP_PACKET,
    message,
)
from proxy.wire.messages.backend_key_data import BackendKey
from proxy.wire.messages.error_response import PgError, protocol_violation
from proxy.wire.messages.startup import (
    CANCEL_REQUEST_CODE,
    GSSENC_REQUEST_CODE,
    SSL_REQUEST_CODE,
    StartupError,
    parse_startup,
)

log = logging.getLogger(__name__)

AUTH_OK = 0
AUTH_SASL = 10
#: SCRAM with channel binding binds to the TLS connection the client sees — the
#: proxy's — while the server checks its own: it can never succeed through the proxy.
CHANNEL_BINDING_MECHANISMS = frozenset({b"SCRAM-SHA-256-PLUS"})
#: Authentication requests the client must answer with one 'p' message (cleartext,
#: MD5, GSS, GSS continue, SSPI, SASL, SASL continue).
AUTH_NEEDS_RESPONSE = frozenset({3, 5, 7, 8, 9, 10, 11})


class HandshakeHost(UpstreamListener, Protocol):
    """What the handshake needs from its session."""

    @property
    def phase(self) -> Phase: ...

    def set_phase(self, phase: Phase) -> None: ...

    def write(self, data: bytes) -> None: ...

    def fail(self, error: bytes) -> None: ...

    def close(self) -> None: ...

    def upstream_attached(self, upstream: UpstreamProtocol) -> None: ...

    def handshake_done(self, status: int) -> None: ...

    async def cancel_upstream(self) -> None: ...

    def hold_reading(self) -> None: ...

    #: The session's logging context (``proxy.logcontext``): its tasks run in it.
    log_context: contextvars.Context

    async def start_tls(self, context: ssl.SSLContext) -> bool: ...


class Handshake:
    """Drives one session from its first byte to the first ReadyForQuery."""

    def __init__(
        self, host: HandshakeHost, ctx: WorkerContext, *, over_limit: bool = False
    ) -> None:
        self._host = host
        self._ctx = ctx
        self._over_limit = over_limit
        self.buf = bytearray()
        self.protocol_version = 0
        #: The database the client asked for (PostgreSQL defaults it to the user name).
        self.database = ""
        self.auth_ok = False
        #: The client socket was upgraded to TLS.
        self.tls = False
        self.upstream_key: BackendKey | None = None
        self.key: BackendKey | None = None
        self._awaiting_password = False
        #: Sent again on a plaintext upstream (see ``_reconnect_plaintext``).
        self._startup_packet: bytes | None = None
        #: The client's SASLInitialResponse, waiting for the plaintext upstream's
        #: AuthenticationSASL (which the client, having had one, does not see).
        self._replay: bytes | None = None
        #: The server offered SCRAM-SHA-256-PLUS (its connection from the proxy is TLS)
        #: and the client was not shown it.
        self._binding_withheld = False
        self._upstream: UpstreamProtocol | None = None
        self._connect_task: asyncio.Task[None] | None = None
        # As PostgreSQL's authentication_timeout: a stalled handshake holds no socket.
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            ctx.settings.authentication_timeout, self._timed_out
        )

    def client_data(self, data: bytes) -> None:
        self.buf += data
        phase = self._host.phase
        if phase is Phase.STARTUP:
            self._read_startup()
        elif self._awaiting_password:
            self._relay_auth_responses()
        elif len(self.buf) > MAX_AUTH_MESSAGE + MAX_STARTUP_PACKET:
            self._host.fail(protocol_violation("unexpected data before the session was ready"))

    def stop(self) -> None:
        """The session ended: stop the timer and any connection attempt."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._connect_task is not None:
            self._connect_task.cancel()
        if self.key is not None:
            self._ctx.cancels.release(self.key)

    def _timed_out(self) -> None:
        if self._host.phase not in (Phase.RELAYING, Phase.INTERCEPTING, Phase.CLOSED):
            self._host.log_context.run(
                log.info, "closing a client that did not finish authentication in time"
            )
            self._host.fail(
                PgError(
                    "08006", "canceling authentication due to timeout", severity="FATAL"
                ).encode()
            )

    # -- startup packet -------------------------------------------------------

    def _read_startup(self) -> None:
        buf = self.buf
        host = self._host
        while host.phase is Phase.STARTUP and len(buf) >= 4:
            length = INT32.unpack_from(buf, 0)[0]
            if not 8 <= length <= MAX_STARTUP_PACKET:
                # As PostgreSQL (a COMMERROR): logged, and the connection closed without
                # an answer — a client that hangs up early (a Terminate before its
                # startup packet) or a port scanner hears nothing.
                host.log_context.run(
                    log.info, "invalid length of startup packet (%d); closing", length
                )
                host.close()
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
                    host.fail(protocol_violation("received unencrypted data after SSL request"))
                    return
                if self.tls:
                    host.fail(protocol_violation("SSL request on an encrypted connection"))
                    return
                if code == SSL_REQUEST_CODE and self._ctx.tls is not None:
                    host.write(b"S")
                    host.hold_reading()
                    self._ctx.spawn(self._upgrade(self._ctx.tls))
                    return
                host.write(b"N")
            elif code == CANCEL_REQUEST_CODE and length >= 16:
                host.set_phase(Phase.CLOSED)
                self._ctx.spawn(self._cancel_then_close(packet))
            else:
                self._begin(packet)

    async def _upgrade(self, context: ssl.SSLContext) -> None:
        if await self._host.start_tls(context):
            self.tls = True

    async def _cancel_then_close(self, packet: bytes) -> None:
        """Close the cancel connection only once the cancel was delivered, as
        PostgreSQL does: libpq's cancel returns when the connection closes, so a client
        that then reads on (a COPY it aborts) sees the cancel's effect, not more rows."""
        try:
            await self._ctx.cancels.cancel(packet)
        finally:
            self._host.close()

    def _begin(self, packet: bytes) -> None:
        try:
            startup = parse_startup(packet)
        except StartupError as exc:
            self._host.fail(PgError(exc.sqlstate, str(exc), severity="FATAL").encode())
            return
        if self._over_limit:
            self._host.fail(
                PgError("53300", "sorry, too many clients already", severity="FATAL").encode()
            )
            return
        if self._ctx.tls_required and not self.tls:
            # As a hostssl-only pg_hba.conf: the password never crosses in the clear.
            self._host.fail(
                PgError(
                    "28000",
                    "writeproxy accepts only TLS connections (tls_mode = require)",
                    severity="FATAL",
                    hint="Connect with sslmode=require (or verify-full).",
                ).encode()
            )
            return
        self.protocol_version = startup.version
        parameters = startup.parameters
        self.database = parameters.get("database") or parameters["user"]
        self._host.set_phase(Phase.CONNECTING)
        self._connect_task = self._ctx.spawn(
            self._connect(startup.raw), context=self._host.log_context
        )

    async def _connect(self, startup_packet: bytes) -> None:
        host = self._host
        try:
            upstream = await connect_upstream(
                self._ctx.upstream, host, self._ctx.settings.connect_timeout
            )
        except (OSError, TimeoutError, ValueError) as exc:
            # ssl.SSLError (a certificate that does not verify) is an OSError.
            log.warning("cannot reach upstream %s: %s", self._ctx.upstream.host, exc)
            host.fail(
                PgError(
                    "08006",
                    "could not connect to the upstream server",
                    severity="FATAL",
                    detail=str(exc) or type(exc).__name__,
                ).encode()
            )
            return
        if host.phase is Phase.CLOSED:
            if upstream.transport is not None:
                upstream.transport.close()
            return
        self._upstream = upstream
        self._startup_packet = startup_packet
        host.upstream_attached(upstream)
        host.set_phase(Phase.AUTHENTICATING)
        assert upstream.transport is not None
        upstream.transport.write(startup_packet)

    async def _reconnect_plaintext(self, first_response: bytes) -> None:
        """A client that could bind was refused -PLUS (the proxy cannot relay it) and
        says so, which the server, reached over TLS, would take for a downgrade. The
        URL's sslmode allows plaintext (as libpq's ``prefer`` retries without TLS): the
        session goes on over a plaintext connection, where the server offers plain
        SCRAM, with the same startup packet and the client's first SCRAM message (it
        has not seen a server nonce yet, so the exchange is still valid)."""
        host = self._host
        old, packet = self._upstream, self._startup_packet
        assert packet is not None
        plain = replace(self._ctx.upstream, tls=replace(self._ctx.upstream.tls, mode="disable"))
        try:
            upstream = await connect_upstream(plain, host, self._ctx.settings.connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            log.warning("cannot reach upstream %s without TLS: %s", plain.host, exc)
            host.fail(CHANNEL_BINDING_REFUSED.encode())
            return
        if old is not None:
            old.detach()
        if host.phase is Phase.CLOSED:
            if upstream.transport is not None:
                upstream.transport.close()
            return
        log.info("SCRAM channel binding: continuing over a plaintext upstream (sslmode allows)")
        self._upstream = upstream
        self._binding_withheld = False
        self._replay = first_response
        host.upstream_attached(upstream)
        assert upstream.transport is not None
        upstream.transport.write(packet)

    # -- authentication -------------------------------------------------------

    def _relay_auth_responses(self) -> None:
        """Forward the one password/SASL message the server asked for; anything sent
        before it is asked stays buffered (for a trust user it is ordinary traffic)."""
        buf = self.buf
        upstream = self._upstream
        assert upstream is not None and upstream.transport is not None
        while self._awaiting_password and len(buf) >= 5:
            kind, length = HEADER.unpack_from(buf, 0)
            if kind[0] not in FRONTEND_AUTH_TYPES or not 4 <= length <= MAX_AUTH_MESSAGE:
                self._host.fail(
                    protocol_violation(f"expected password response, got message type {kind[0]}")
                )
                return
            if len(buf) < 1 + length:
                return
            if self._binding_withheld and claims_binding_unsupported(bytes(buf[5 : 1 + length])):
                if self._ctx.upstream.tls.required or self._startup_packet is None:
                    self._host.fail(CHANNEL_BINDING_REFUSED.encode())
                    return
                # The URL's sslmode allows plaintext (prefer, allow): go on over a
                # plaintext upstream, where the server does not offer binding either.
                first = bytes(buf[: 1 + length])
                del buf[: 1 + length]
                self._awaiting_password = False
                self._connect_task = self._ctx.spawn(
                    self._reconnect_plaintext(first), context=self._host.log_context
                )
                return
            upstream.transport.write(bytes(buf[: 1 + length]))
            del buf[: 1 + length]
            self._awaiting_password = False

    def upstream_message(self, kind: int, body: bytes) -> None:
        """One server message before the session is ready."""
        host = self._host
        if kind == Backend.BACKEND_KEY_DATA:
            # Passed through unchanged: the client's backend pid is the server's.
            self.upstream_key = self.key = BackendKey.decode(body)
            set_backend_pid(host.log_context, self.key.pid)
            self._ctx.cancels.register(host, self.key)
            host.write(message(bytes((kind,)), body))
            return
        if (
            kind == Backend.AUTHENTICATION
            and self._replay is not None
            and INT32.unpack_from(body, 0)[0] == AUTH_SASL
            and self._upstream is not None
            and self._upstream.transport is not None
        ):
            # The plaintext upstream asks again: answer with what the client sent.
            first, self._replay = self._replay, None
            self._upstream.transport.write(first)
            return
        self._replay = None
        if kind == Backend.AUTHENTICATION and INT32.unpack_from(body, 0)[0] == AUTH_SASL:
            offered = body
            body = without_channel_binding(body)
            self._binding_withheld = body != offered
        host.write(message(bytes((kind,)), body))
        if kind == Backend.AUTHENTICATION:
            code = INT32.unpack_from(body, 0)[0]
            if code == AUTH_OK:
                self.auth_ok = True
            elif code in AUTH_NEEDS_RESPONSE:
                self._awaiting_password = True
                self._relay_auth_responses()
        elif kind == Backend.READY_FOR_QUERY:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            host.handshake_done(body[0])


#: A client that could bind but was not offered -PLUS says so (gs2 flag ``y``); the
#: server, which does offer it on its TLS connection from the proxy, takes that for a
#: downgrade attack and refuses with a confusing message. The flag is covered by the
#: client's proof, so the proxy cannot change it: it refuses first, saying what to do.
CHANNEL_BINDING_REFUSED = PgError(
    "28000",
    "SCRAM channel binding cannot pass through writeproxy to a server reached over TLS",
    severity="FATAL",
    detail="The client supports channel binding; the binding would be to writeproxy's "
    "TLS certificate, not the server's, so the proxy does not offer SCRAM-SHA-256-PLUS, "
    "and the server refuses a client that could bind but does not.",
    hint="Connect with channel_binding=disable (libpq, psycopg; node-postgres: leave "
    "enableChannelBinding off), or give writeproxy a plaintext upstream on a trusted "
    "network (sslmode=disable in its upstream URL).",
)


def claims_binding_unsupported(body: bytes) -> bool:
    """Whether a SASLInitialResponse body (mechanism, length, client-first message)
    is SCRAM with the gs2 flag ``y``: "I can bind, but I think the server cannot"."""
    mechanism, _, rest = body.partition(b"\0")
    return mechanism == b"SCRAM-SHA-256" and rest[4:5] == b"y"


def without_channel_binding(body: bytes) -> bytes:
    """An AuthenticationSASL body without the mechanisms that bind to the server's TLS
    connection, so that a client offered only the rest uses plain SCRAM-SHA-256."""
    names = body[4:].split(b"\0")
    kept = [name for name in names if name and name not in CHANNEL_BINDING_MECHANISMS]
    return body[:4] + b"".join(name + b"\0" for name in kept) + b"\0"
