"""The interception driver: takes a session out of the fast relay, gets in step with
the upstream, feeds the buffered client messages to the interceptor one at a time,
and hands the session back to the relay when nothing complete is left.

Everything relayed before is answered first (the expected-reply queue says what is
still owed), so no reply is lost or reordered. While the proxy holds a block open for
the client's implicit transaction it stays in step until the client's Sync ends it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from proxy.backend.channel import UpstreamChannel
from proxy.backend.upstream import UpstreamProtocol
from proxy.frontend.intercept import Interceptor
from proxy.frontend.phase import Phase
from proxy.frontend.state import Conversation, SyncedState
from proxy.frontend.transaction import DeferredArchiver, TransactionControl, TransactionJournal
from proxy.wire.framing import HEADER, frame_problem
from proxy.wire.messages.error_response import PgError, protocol_violation
from proxy.writes.router import WriteRouter

log = logging.getLogger(__name__)


class InterceptionHost(Protocol):
    """What the driver needs from its session."""

    @property
    def phase(self) -> Phase: ...

    def send_message(self, kind: int, body: bytes) -> None: ...

    def send_raw(self, data: bytes) -> None: ...

    def fail(self, error: bytes) -> None: ...

    def close(self) -> None: ...

    def on_ready(self, status: int) -> None: ...

    async def until_in_step(self) -> None: ...

    async def more_data(self) -> None: ...


class InterceptionDriver:
    """One per session with synced tables; runs while the session is INTERCEPTING."""

    def __init__(
        self,
        host: InterceptionHost,
        router: WriteRouter,
        conv: Conversation,
        synced: SyncedState,
        journal: TransactionJournal,
        archiver: DeferredArchiver,
        max_message: int,
    ) -> None:
        self._host = host
        self._router = router
        self._conv = conv
        self._synced = synced
        self._journal = journal
        self._archiver = archiver
        self._max_message = max_message

    def _follow_encoding(self, encoding: str | None) -> None:
        """The client changed client_encoding while the proxy drove the session."""
        self._conv.encoding = encoding

    async def run(self, upstream: UpstreamProtocol, buf: bytearray) -> None:
        """Process the complete messages of ``buf`` (the session's client buffer,
        still filled by the session while this runs)."""
        host = self._host
        try:
            await host.until_in_step()
            channel = UpstreamChannel(
                upstream, host.send_message, self._conv.encoding, self._follow_encoding
            )
            transaction = TransactionControl(
                channel, self._synced.ledger, self._journal, self._archiver, self._conv.tx_status
            )

            def on_ready(status: int) -> None:
                transaction.status_changed(status)
                host.on_ready(status)

            interceptor = Interceptor(
                host, channel, self._router, self._conv, self._synced, transaction, on_ready
            )
            try:
                await interceptor.drain_expected(self._conv.expected.take())
                while host.phase is Phase.INTERCEPTING:
                    if len(buf) >= 5:
                        kind_byte, length = HEADER.unpack_from(buf, 0)
                        problem = frame_problem(kind_byte[0], length, self._max_message)
                        if problem is not None:
                            host.fail(protocol_violation(problem))
                            return
                    item = next_message(buf)
                    if item is None:
                        if not self._synced.ledger.proxy_block:
                            break
                        # Stay in step until the client's Sync ends the proxy's block.
                        await host.more_data()
                        continue
                    kind, raw = item
                    if not await interceptor.process(kind, raw):
                        break
            finally:
                if host.phase is Phase.INTERCEPTING:
                    channel.close()
        except (ConnectionResetError, OSError):
            host.close()
        except Exception:
            log.exception("synced write handling failed; closing the session")
            host.fail(PgError("XX000", "internal error in writeproxy", severity="FATAL").encode())


def next_message(buf: bytearray) -> tuple[int, bytes] | None:
    """Pop the next complete message (kind, raw frame) from a client buffer."""
    if len(buf) < 5:
        return None
    kind, length = HEADER.unpack_from(buf, 0)
    if len(buf) < 1 + length:
        return None
    raw = bytes(buf[: 1 + length])
    del buf[: 1 + length]
    return kind[0], raw
