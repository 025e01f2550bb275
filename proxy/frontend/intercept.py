"""Handling the client messages around a synced write, one at a time.

The relay hands over as soon as it meets a message the proxy must handle itself (a
Query or Parse whose text may write a synced table, a Bind or Execute of such a
statement, or — while the client's transaction holds vendor changes — a statement that
ends the transaction or rolls back a savepoint). The driver (``proxy.frontend.driver``)
first waits until the upstream has answered everything relayed before, then passes
each buffered client message here: ordinary ones are forwarded with a Flush and their
answers relayed until the message's last expected reply; synced writes are executed by
the write router, and their outcome is encoded for the client in one place
(``proxy.frontend.answer``).

After an error in the extended protocol PostgreSQL ignores messages until Sync; the
interceptor does the same for errors it produces itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from proxy.backend.channel import UpstreamChannel
from proxy.backend.expected import LAST_REPLY, Expected
from proxy.backend.params import StatementParams
from proxy.frontend.answer import encode_error, encode_outcome
from proxy.frontend.relay import note_begin
from proxy.frontend.state import BoundWrite, Conversation, PreparedWrite, SyncedState
from proxy.frontend.transaction import TransactionControl
from proxy.sql.txcontrol import TxControl, may_control_transaction, transaction_controls
from proxy.wire.codes import COPY_STARTS, SYNC_POINTS, Backend, Frontend
from proxy.wire.framing import INT16
from proxy.wire.messages import extended
from proxy.wire.messages.bind import Bind
from proxy.wire.messages.command_complete import command_complete
from proxy.wire.messages.parse import Parse
from proxy.wire.messages.ready_for_query import IDLE
from proxy.writes.outcome import Failure
from proxy.writes.router import WriteRouter

log = logging.getLogger(__name__)

ERROR = Backend.ERROR_RESPONSE
READY = Backend.READY_FOR_QUERY


class ClientWriter(Protocol):
    def send_message(self, kind: int, body: bytes) -> None: ...

    def send_raw(self, data: bytes) -> None: ...


class Interceptor:
    """Drives one session while it is out of the fast relay."""

    def __init__(
        self,
        client: ClientWriter,
        channel: UpstreamChannel,
        router: WriteRouter,
        conv: Conversation,
        synced: SyncedState,
        transaction: TransactionControl,
        on_ready: Callable[[int], None],
    ) -> None:
        self._client = client
        self._channel = channel
        self._router = router
        self._conv = conv
        self._synced = synced
        self._tx = transaction
        self._on_ready = on_ready

    async def drain_expected(self, owed: list[Expected]) -> None:
        """Relay the answers still owed to messages forwarded without a Sync."""
        if not owed:
            return
        self._channel.send(extended.FLUSH)
        for expected in owed:
            if self._synced.skip_until_sync:
                break
            if await self._relay_replies(expected.last) == "copy":
                raise RuntimeError("COPY started inside a pipeline with synced writes")

    async def process(self, kind: int, raw: bytes) -> bool:
        """Handle one client message; False hands the session back to the relay."""
        synced = self._synced
        failed = synced.skip_until_sync
        if failed:
            if kind not in (Frontend.SYNC, Frontend.TERMINATE):
                return True
            synced.skip_until_sync = False
        if synced.ledger.proxy_block and kind in (Frontend.SYNC, Frontend.QUERY):
            await self._close_proxy_block(failed)
        body = raw[5:]
        if kind == Frontend.QUERY:
            sql = self._text(body[:-1]) if body.endswith(b"\0") else None
            if sql is None or "\0" in sql:
                # Not one readable NUL-terminated string: PostgreSQL's own answer.
                return await self._forward(raw, kind)
            return await self._query(raw, sql)
        if kind == Frontend.PARSE:
            try:
                parse = Parse.decode(body, self._conv.encoding or "utf-8")
            except ValueError:  # malformed: PostgreSQL's own answer
                return await self._forward(raw, kind)
            if _undecodable(parse.query):
                return await self._forward(raw, kind)
            await self._parse(raw, parse)
            return True
        if kind == Frontend.BIND:
            try:
                bind = Bind.decode(body)
            except ValueError:
                return await self._forward(raw, kind)
            await self._bind(raw, bind)
            return True
        if kind == Frontend.EXECUTE:
            return await self._execute(raw, extended.execute_portal(body))
        if kind == Frontend.CLOSE:
            synced.forget(*extended.target_name(body))
        if kind == Frontend.TERMINATE:
            self._channel.send(raw)
            return False
        if kind == Frontend.FLUSH:
            return True
        return await self._forward(raw, kind)

    def _text(self, raw: bytes) -> str | None:
        """SQL text in the session's client encoding; None if it holds bytes invalid
        in that encoding (PostgreSQL rejects them as it would without the proxy)."""
        try:
            return raw.decode(self._conv.encoding or "utf-8")
        except UnicodeDecodeError:
            return None

    async def _forward(self, raw: bytes, kind: int) -> bool:
        """Send a client message upstream as it is and relay PostgreSQL's replies."""
        synced = self._synced
        last = LAST_REPLY.get(kind)
        if kind == Frontend.FUNCTION_CALL:
            synced.ledger.dirty = True
        self._channel.send(raw if kind in SYNC_POINTS else raw + extended.FLUSH)
        if last is None:
            return True  # CopyData/CopyDone/CopyFail outside COPY: no reply
        return await self._relay_replies(last) != "copy"

    async def _relay_replies(self, last: frozenset[int], seen: list[int] | None = None) -> str:
        """Forward upstream replies to the client up to the expected last one
        (``seen`` collects the kinds relayed, for transaction control)."""
        while True:
            kind, body = await self._channel.next()
            self._client.send_message(kind, body)
            if seen is not None:
                seen.append(kind)
            if kind == READY:
                self._on_ready(body[0])
                return "ready"
            if kind == ERROR and READY not in last:
                self._synced.skip_until_sync = True
                return "error"
            if kind in COPY_STARTS:
                return "copy"
            if kind in last:
                return "done"

    async def _query(self, raw: bytes, sql: str) -> bool:
        classification = self._router.classify(sql)
        outcome = None
        if not classification.passthrough:
            outcome = await self._router.run(
                self._channel, sql, classification, self._synced.ledger
            )
        if outcome is not None:
            self._client.send_raw(encode_outcome(outcome, describe=True))
            self._client.send_message(READY, bytes((outcome.status,)))
            self._on_ready(outcome.status)
            return True
        controls = transaction_controls(sql) if self._synced.ledger.active else ()
        if controls:
            refusal = await self._tx.before(controls)
            if refusal is not None:
                self._client.send_raw(encode_outcome(refusal, describe=False))
                self._client.send_message(READY, bytes((refusal.status,)))
                self._on_ready(refusal.status)
                return True
        self._channel.send(raw)
        seen: list[int] = []
        result = await self._relay_replies(LAST_REPLY[Frontend.QUERY], seen)
        if result == "copy":
            self._conv.pending_syncs += 1  # its ReadyForQuery comes through the relay
            return False
        if controls:
            done = seen.count(Backend.COMMAND_COMPLETE)
            await self._tx.after([c for c in controls if c.index < done])
        return True

    async def _parse(self, raw: bytes, parse: Parse) -> None:
        synced = self._synced
        classification = self._router.classify(parse.query)
        if classification.passthrough:
            synced.statements.pop(parse.name, None)
            if may_control_transaction(parse.query):
                synced.controls[parse.name] = transaction_controls(parse.query)
            else:
                synced.controls.pop(parse.name, None)
            self._channel.send(raw + extended.FLUSH)
            await self._relay_replies(LAST_REPLY[Frontend.PARSE])
            return
        # Ask for the parameter types PostgreSQL inferred: the proxy's own statements
        # reuse the client's parameter values and need their types.
        self._channel.send(raw + extended.describe_statement(parse.name) + extended.FLUSH)
        kind, body = await self._channel.next()
        self._client.send_message(kind, body)
        if kind == ERROR:
            synced.skip_until_sync = True
            return
        kind, body = await self._channel.next()
        count = INT16.unpack_from(body, 0)[0]
        types = tuple(int.from_bytes(body[2 + 4 * i : 6 + 4 * i], "big") for i in range(count))
        await self._channel.next()  # RowDescription or NoData: the client did not ask
        synced.statements[parse.name] = PreparedWrite(parse.query, classification, types)

    async def _bind(self, raw: bytes, bind: Bind) -> None:
        synced = self._synced
        statement = synced.statements.get(bind.statement)
        self._channel.send(raw + extended.FLUSH)
        if await self._relay_replies(LAST_REPLY[Frontend.BIND]) != "done":
            return
        synced.portals.pop(bind.portal, None)
        synced.done_portals.pop(bind.portal, None)
        synced.control_portals.pop(bind.portal, None)
        if statement is not None:
            synced.portals[bind.portal] = BoundWrite(statement, bind)
        elif (controls := synced.controls.get(bind.statement)) is not None:
            synced.control_portals[bind.portal] = controls

    async def _execute(self, raw: bytes, portal: str) -> bool:
        synced = self._synced
        if (done := synced.done_portals.get(portal)) is not None:
            self._client.send_raw(command_complete(done))
            return True
        bound = synced.portals.get(portal)
        outcome = None
        if bound is not None:
            await self._open_proxy_block()
            outcome = await self._router.run(
                self._channel,
                bound.statement.query,
                bound.statement.classification,
                synced.ledger,
                StatementParams.of(bound.bind, bound.statement.param_types),
            )
        if outcome is not None:
            self._client.send_raw(encode_outcome(outcome, describe=False))
            if isinstance(outcome, Failure):
                synced.skip_until_sync = True
            else:
                verb, *_ = outcome.tag.rsplit(" ", 1)
                synced.done_portals[portal] = f"{verb} 0"
            return True
        if bound is not None and not await self._rebind(bound):
            return True
        controls = synced.control_portals.get(portal, ())
        note_begin(synced, controls)
        return await self._execute_relayed(raw, controls if synced.ledger.active else ())

    async def _execute_relayed(self, raw: bytes, controls: tuple[TxControl, ...]) -> bool:
        synced = self._synced
        if controls:
            refusal = await self._tx.before(controls)
            if refusal is not None:
                self._client.send_raw(encode_outcome(refusal, describe=False))
                synced.skip_until_sync = True
                return True
        synced.ledger.dirty = True
        self._channel.send(raw + extended.FLUSH)
        result = await self._relay_replies(LAST_REPLY[Frontend.EXECUTE])
        if controls:
            # Failed: none of it happened (a SERIALIZABLE COMMIT's archives are dropped).
            await self._tx.after(list(controls) if result == "done" else [])
        return result != "copy"

    async def _open_proxy_block(self) -> None:
        """Messages up to a Sync form one implicit transaction: a pipeline with synced
        writes (executemany, executeBatch, psycopg pipeline mode) is all or nothing. The
        proxy makes that transaction an explicit block, and ends it at the client's
        Sync."""
        ledger = self._synced.ledger
        if ledger.proxy_block or self._conv.tx_status != IDLE or ledger.client_began:
            return
        if ledger.dirty:
            # Statements already ran in this implicit transaction: BEGIN without a Sync
            # makes the block explicit with them in it, so they stay all or nothing.
            result = await self._channel.begin_in_pipeline()
        else:
            result = await self._channel.run("BEGIN")
        if result.error is None:
            ledger.proxy_block = True

    async def _close_proxy_block(self, failed: bool) -> None:
        """At the client's Sync: commit the block, or roll it back; the transaction's
        vendor changes are then resolved by PostgreSQL's verdict on it."""
        self._synced.ledger.proxy_block = False
        error = await self._tx.end_proxy_block(failed)
        if error is not None:
            self._client.send_raw(encode_error(error))

    async def _rebind(self, bound: BoundWrite) -> bool:
        """Recreate the client's portal of a statement that turned out not to write a
        synced table, before relaying its Execute.

        Resolving the statement's targets ran a statement of the proxy's own and a Sync,
        which ended the implicit transaction holding the client's portal (in a block
        the portal survives: it is closed and bound again). The client already has its
        BindComplete, so it is not relayed again. False: binding failed (the error is
        relayed and the rest is skipped until Sync)."""
        bind = bound.bind
        replay = extended.close_portal(bind.portal) + bind.encode() + extended.FLUSH
        self._channel.send(replay)
        while True:
            kind, body = await self._channel.next()
            if kind == ERROR:
                self._client.send_message(kind, body)
                self._synced.skip_until_sync = True
                return False
            if kind == Backend.BIND_COMPLETE:
                return True


def _undecodable(text: str) -> bool:
    """Whether decoding kept bytes invalid in the client encoding (as surrogates)."""
    return not text.isascii() and any("\udc80" <= char <= "\udcff" for char in text)
