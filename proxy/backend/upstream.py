"""The proxy's connection to the upstream PostgreSQL for one client session.

During startup every server message is decoded (authentication requests are relayed,
BackendKeyData is swapped for the proxy's key). Afterwards the bytes are forwarded to
the client as they arrive, unmodified, while a running scan keeps track of message
boundaries so that the transaction status in ReadyForQuery is always known without
buffering whole messages: a multi-hundred-MB result streams through.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Protocol

from proxy.wire.framing import HEADER, INT32
from proxy.wire.messages.startup import SSL_REQUEST_CODE

if TYPE_CHECKING:
    from proxy.backend.address import UpstreamAddress

READY_FOR_QUERY = ord("Z")
SSL_REQUEST = INT32.pack(8) + INT32.pack(SSL_REQUEST_CODE)
PARAMETER_STATUS = ord("S")


class UpstreamListener(Protocol):
    """What the client session must offer to the upstream connection."""

    def upstream_startup_message(self, kind: int, body: bytes) -> None: ...
    def upstream_data(self, data: bytes) -> None: ...
    def upstream_ready(self, status: int) -> None: ...
    def upstream_parameter(self, body: bytes) -> None: ...
    def upstream_lost(self, at_boundary: bool, last_kind: int) -> None: ...
    def upstream_pause_writing(self) -> None: ...
    def upstream_resume_writing(self) -> None: ...


class _Detached:
    """The listener of a connection its session gave up: hears nothing."""

    def upstream_startup_message(self, kind: int, body: bytes) -> None: ...
    def upstream_data(self, data: bytes) -> None: ...
    def upstream_ready(self, status: int) -> None: ...
    def upstream_parameter(self, body: bytes) -> None: ...
    def upstream_lost(self, at_boundary: bool, last_kind: int) -> None: ...
    def upstream_pause_writing(self) -> None: ...
    def upstream_resume_writing(self) -> None: ...


class UpstreamProtocol(asyncio.Protocol):
    """Reads the server side of one session."""

    __slots__ = (
        "_buf",
        "_capture",
        "_header",
        "_last_kind",
        "_listener",
        "_relaying",
        "_skip",
        "transport",
    )

    def __init__(self, listener: UpstreamListener) -> None:
        self._listener = listener
        self._relaying = False
        self._buf = bytearray()
        # Relay-mode scan state: bytes of the current message body still to come,
        # and an incomplete header carried over from the previous chunk.
        self._skip = 0
        self._header = b""
        self._last_kind = 0
        self._capture: Capture | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def detach(self) -> None:
        """Close this connection without its session hearing of it (the session goes
        on over another one)."""
        self._listener = _Detached()
        if self.transport is not None:
            self.transport.close()

    def start_relaying(self) -> None:
        """Switch from decoding startup messages to forwarding raw bytes."""
        self._relaying = True
        if self._buf:
            rest, self._buf = bytes(self._buf), bytearray()
            self.data_received(rest)

    def begin_capture(self) -> Capture:
        """Stop relaying: hand whole messages to the proxy's own reader instead.

        Only valid at a message boundary with nothing outstanding for the client."""
        assert self.at_boundary, "capture must start at a message boundary"
        self._capture = Capture()
        return self._capture

    def end_capture(self) -> None:
        assert self._capture is not None and not self._capture.pending
        self._capture = None

    def data_received(self, data: bytes) -> None:
        if self._capture is not None:
            self._capture.feed(data)
            return
        if self._relaying:
            self._listener.upstream_data(data)
            self._scan(data)
            return
        buf = self._buf
        buf += data
        while len(buf) >= 5 and not self._relaying:
            kind, length = HEADER.unpack_from(buf, 0)
            if len(buf) < 1 + length:
                return
            body = bytes(buf[5 : 1 + length])
            del buf[: 1 + length]
            self._last_kind = kind[0]
            self._listener.upstream_startup_message(kind[0], body)

    def _scan(self, data: bytes) -> None:
        """Follow message boundaries in relayed bytes, noting ReadyForQuery."""
        if self._header:
            # A header (or ReadyForQuery's status byte) was split across chunks.
            data = self._header + data
            self._header = b""
        n = len(data)
        pos = self._skip
        if pos >= n:
            self._skip = pos - n
            return
        self._skip = 0
        while pos < n:
            if n - pos < 5:
                self._header = data[pos:]
                return
            kind = data[pos]
            end = pos + 1 + INT32.unpack_from(data, pos + 1)[0]
            self._last_kind = kind
            if kind in (READY_FOR_QUERY, PARAMETER_STATUS):
                if end > n:
                    self._header = data[pos:]
                    return
                if kind == READY_FOR_QUERY:
                    self._listener.upstream_ready(data[pos + 5])
                else:  # e.g. client_encoding changed: the interceptor reads text in it
                    self._listener.upstream_parameter(bytes(data[pos + 5 : end]))
            elif end > n:
                self._skip = end - n
                return
            pos = end

    @property
    def at_boundary(self) -> bool:
        return self._skip == 0 and not self._header

    def pause_writing(self) -> None:
        self._listener.upstream_pause_writing()

    def resume_writing(self) -> None:
        self._listener.upstream_resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._capture is not None:
            self._capture.lost()
        self._listener.upstream_lost(self.at_boundary and not self._buf, self._last_kind)


class Capture:
    """Whole upstream messages for the proxy's own reader (see proxy.backend.channel)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._messages: deque[tuple[int, bytes]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._lost = False

    @property
    def pending(self) -> bool:
        return bool(self._buf or self._messages)

    def feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        while n - pos >= 5:
            kind, length = HEADER.unpack_from(buf, pos)
            if n - pos < 1 + length:
                break
            self._messages.append((kind[0], bytes(buf[pos + 5 : pos + 1 + length])))
            pos += 1 + length
        del buf[:pos]
        self._wake()

    def lost(self) -> None:
        self._lost = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> tuple[int, bytes]:
        while not self._messages:
            if self._lost:
                raise ConnectionResetError("upstream connection lost")
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._messages.popleft()


async def connect_upstream(
    address: UpstreamAddress, listener: UpstreamListener, timeout: float
) -> UpstreamProtocol:
    """Open the TCP or Unix-socket connection for one session, with TLS as the
    upstream URL's ``sslmode`` says (see ``proxy.tls``)."""
    loop = asyncio.get_running_loop()
    protocol = UpstreamProtocol(listener)

    async def connect() -> None:
        if address.is_unix_socket:
            await loop.create_unix_connection(lambda: protocol, address.unix_socket_path)
            return
        negotiator = _TlsNegotiator()
        transport, _ = await loop.create_connection(lambda: negotiator, address.host, address.port)
        tls = address.tls
        if tls.attempts and await negotiator.server_accepts_tls(transport):
            # The handshake runs under the negotiator: a failure (a certificate that
            # does not verify) is this connect's error, not a lost session.
            secure = await loop.start_tls(
                transport,
                negotiator,
                tls.context(),
                server_hostname=address.host if tls.mode == "verify-full" else None,
            )
            assert secure is not None
            secure.set_protocol(protocol)
            protocol.connection_made(secure)
            return
        if tls.required:
            transport.close()
            raise ConnectionRefusedError(
                f"the upstream server does not support TLS (sslmode={tls.mode})"
            )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)

    await asyncio.wait_for(connect(), timeout)
    return protocol


class _TlsNegotiator(asyncio.Protocol):
    """The first exchange on a TCP connection to PostgreSQL: SSLRequest, then one
    byte, ``S`` (go ahead with TLS) or ``N`` (no TLS here)."""

    def __init__(self) -> None:
        self._answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if not self._answer.done():
            self._answer.set_result(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._answer.done():
            self._answer.set_exception(exc or ConnectionResetError("upstream closed"))

    async def server_accepts_tls(self, transport: asyncio.BaseTransport) -> bool:
        transport.write(SSL_REQUEST)  # type: ignore[attr-defined]
        answer = await self._answer
        if answer not in (b"S", b"N"):
            # Anything else (an old server's ErrorResponse, or bytes after the answer,
            # which a man in the middle could have injected) ends the connection.
            transport.close()
            raise ConnectionRefusedError("unexpected answer to the TLS request upstream")
        return answer == b"S"


async def send_cancel(address: UpstreamAddress, packet: bytes, timeout: float) -> None:
    """Deliver a CancelRequest to the upstream on a fresh connection, as libpq does
    (over TLS when the URL's sslmode requires it)."""

    async def deliver() -> None:
        if address.is_unix_socket:
            reader, writer = await asyncio.open_unix_connection(address.unix_socket_path)
        else:
            reader, writer = await asyncio.open_connection(address.host, address.port)
        try:
            if address.tls.required:
                writer.write(SSL_REQUEST)
                await writer.drain()
                if await reader.readexactly(1) != b"S":
                    raise ConnectionRefusedError("the upstream server does not support TLS")
                await writer.start_tls(
                    address.tls.context(),
                    server_hostname=address.host if address.tls.mode == "verify-full" else None,
                )
            writer.write(packet)
            await writer.drain()
            # The server closes the connection once it has read the request.
            await reader.read()
        finally:
            writer.close()

    await asyncio.wait_for(deliver(), timeout)
