"""Handling the client messages around a synced write, one at a time.

The relay hands over as soon as it meets a message that involves a synced table (a
Query or Parse whose text may write one, a Bind or Execute of such a statement). The
interceptor first waits until the upstream has answered everything relayed before,
then processes each buffered client message itself: ordinary ones are forwarded with
a Flush and their answers relayed until the message's last expected reply; synced
writes are executed by the write router. When the buffer holds no complete message
the relay takes over again; everything is in step, so nothing is lost or reordered.

After an error in the extended protocol PostgreSQL ignores messages until Sync; the
interceptor does the same for errors it produces itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proxy.backend.channel import UpstreamChannel
from proxy.sql.classifier import Classification
from proxy.wire.framing import HEADER, INT16, message
from proxy.wire.messages import extended
from proxy.wire.messages.bind import Bind
from proxy.wire.messages.command_complete import command_complete
from proxy.wire.messages.parse import Parse
from proxy.wire.messages.ready_for_query import IDLE
from proxy.writes.executor import Failure, Outcome, compensate_all

if TYPE_CHECKING:
    from proxy.frontend.session import ClientSession

log = logging.getLogger(__name__)

ERROR = ord("E")
READY = ord("Z")
#: Replies after which the upstream waits for the client (COPY): hand back to the relay.
COPY_STARTS = frozenset(b"GHW")
#: The last reply to each message kind sent with a Flush (an ErrorResponse ends any).
LAST_REPLY = {
    ord("P"): frozenset(b"1"),
    ord("B"): frozenset(b"2"),
    ord("C"): frozenset(b"3"),
    ord("D"): frozenset(b"Tn"),
    ord("E"): frozenset(b"CIs"),
    ord("Q"): frozenset(b"Z"),
    ord("S"): frozenset(b"Z"),
    ord("F"): frozenset(b"Z"),
}


@dataclass(frozen=True)
class PreparedWrite:
    """A prepared statement whose text may write a synced table."""

    query: str
    classification: Classification
    param_types: tuple[int, ...]


@dataclass(frozen=True)
class BoundWrite:
    statement: PreparedWrite
    bind: Bind


class Interceptor:
    """Drives one session while it is out of the fast relay."""

    def __init__(self, session: ClientSession, channel: UpstreamChannel) -> None:
        self._session = session
        self._channel = channel
        self._router = session.router
        assert self._router is not None

    async def drain_unsynced(self, unsynced: list[tuple[int, int]]) -> None:
        """Relay the answers still owed to messages forwarded without a Sync."""
        if not unsynced:
            return
        self._channel.send(extended.FLUSH)
        for kind, detail in unsynced:
            if self._session.skip_until_sync:
                break
            if kind == ord("D") and detail == ord("S"):
                await self._relay_replies(frozenset(b"t"))
            last = LAST_REPLY.get(kind)
            if last is not None and await self._relay_replies(last) == "copy":
                raise RuntimeError("COPY started inside a pipeline with synced writes")

    async def process(self, kind: int, raw: bytes) -> bool:
        """Handle one client message; False hands the session back to the relay."""
        session = self._session
        failed = session.skip_until_sync
        if failed:
            if kind not in (ord("S"), ord("X")):
                return True
            session.skip_until_sync = False
        if session.batch_block is not None and kind in (ord("S"), ord("Q")):
            await self._close_batch_block(failed)
        body = raw[5:]
        if kind == ord("Q"):
            return await self._query(raw, body[:-1].decode())
        if kind == ord("P"):
            await self._parse(raw, Parse.decode(body))
            return True
        if kind == ord("B"):
            await self._bind(raw, Bind.decode(body))
            return True
        if kind == ord("E"):
            return await self._execute(raw, extended.execute_portal(body))
        if kind == ord("C"):
            target, name = extended.target_name(body)
            (session.statements if target == ord("S") else session.portals).pop(name, None)
        if kind == ord("X"):
            self._channel.send(raw)
            return False
        if kind == ord("H"):
            return True
        last = LAST_REPLY.get(kind)
        if kind == ord("F"):
            session.batch_dirty = True
        self._channel.send(raw if kind in (ord("S"), ord("F")) else raw + extended.FLUSH)
        if last is None:
            return True  # CopyData/CopyDone/CopyFail outside COPY: no reply
        return await self._relay_replies(last) != "copy"

    async def _relay_replies(self, last: frozenset[int]) -> str:
        """Forward upstream replies to the client up to the expected last one."""
        session = self._session
        while True:
            kind, body = await self._channel.next()
            session.send_message(kind, body)
            if kind == READY:
                session.tx_status = body[0]
                session.batch_dirty = False
                return "ready"
            if kind == ERROR and ord("Z") not in last:
                session.skip_until_sync = True
                return "error"
            if kind in COPY_STARTS:
                return "copy"
            if kind in last:
                return "done"

    async def _query(self, raw: bytes, sql: str) -> bool:
        assert self._router is not None
        classification = self._router.classify(sql)
        outcome = None
        if not classification.passthrough:
            outcome = await self._router.run(self._channel, sql, classification)
        if outcome is None:
            self._channel.send(raw)
            if await self._relay_replies(LAST_REPLY[ord("Q")]) == "copy":
                self._session.pending_syncs += 1  # its ReadyForQuery comes through the relay
                return False
            return True
        self._answer(outcome, describe=True)
        self._session.send_message(READY, bytes((outcome.status,)))
        self._session.tx_status = outcome.status
        self._session.batch_dirty = False
        return True

    async def _parse(self, raw: bytes, parse: Parse) -> None:
        assert self._router is not None
        session = self._session
        classification = self._router.classify(parse.query)
        if classification.passthrough:
            session.statements.pop(parse.name, None)
            self._channel.send(raw + extended.FLUSH)
            await self._relay_replies(LAST_REPLY[ord("P")])
            return
        # Ask for the parameter types PostgreSQL inferred: the proxy's own statements
        # reuse the client's parameter values and need their types.
        self._channel.send(raw + extended.describe_statement(parse.name) + extended.FLUSH)
        kind, body = await self._channel.next()
        session.send_message(kind, body)
        if kind == ERROR:
            session.skip_until_sync = True
            return
        kind, body = await self._channel.next()
        count = INT16.unpack_from(body, 0)[0]
        types = tuple(int.from_bytes(body[2 + 4 * i : 6 + 4 * i], "big") for i in range(count))
        await self._channel.next()  # RowDescription or NoData: the client did not ask
        session.statements[parse.name] = PreparedWrite(parse.query, classification, types)

    async def _bind(self, raw: bytes, bind: Bind) -> None:
        session = self._session
        statement = session.statements.get(bind.statement)
        self._channel.send(raw + extended.FLUSH)
        if await self._relay_replies(LAST_REPLY[ord("B")]) != "done":
            return
        if statement is None:
            session.portals.pop(bind.portal, None)
        else:
            session.portals[bind.portal] = BoundWrite(statement, bind)

    async def _execute(self, raw: bytes, portal: str) -> bool:
        assert self._router is not None
        session = self._session
        bound = session.portals.get(portal)
        outcome = None
        if bound is not None:
            await self._open_batch_block()
            outcome = await self._router.run(
                self._channel,
                bound.statement.query,
                bound.statement.classification,
                bound.bind,
                bound.statement.param_types,
                bound.bind.result_formats,
            )
        if outcome is None:
            if bound is not None and not await self._rebind(bound):
                return True
            session.batch_dirty = True
            self._channel.send(raw + extended.FLUSH)
            return await self._relay_replies(LAST_REPLY[ord("E")]) != "copy"
        self._answer(outcome, describe=False)
        if isinstance(outcome, Failure):
            session.skip_until_sync = True
        elif session.batch_block is not None and outcome.change is not None:
            session.batch_block.append(outcome.change)
        return True

    async def _open_batch_block(self) -> None:
        """Messages up to a Sync form one implicit transaction: a pipeline of synced
        writes (executemany, executeBatch) is all or nothing. When this is the first
        statement executed since ReadyForQuery said idle, the proxy makes that
        transaction an explicit block, and ends it at the client's Sync."""
        session = self._session
        if session.batch_block is not None or session.tx_status != IDLE or session.batch_dirty:
            return
        if (await self._channel.run("BEGIN")).error is None:
            session.batch_block = []

    async def _close_batch_block(self, failed: bool) -> None:
        """At the client's Sync: commit the block, or roll it back and compensate the
        API changes made in it; a failed COMMIT is reported as PostgreSQL would."""
        session = self._session
        changes, session.batch_block = session.batch_block or [], None
        result = await self._channel.run("ROLLBACK" if failed else "COMMIT")
        if result.status != IDLE:
            # An error left the upstream skipping messages until Sync: ours was skipped.
            result = await self._channel.run("ROLLBACK")
        if failed or result.error is not None:
            await compensate_all(changes)
        if result.error is not None and not failed:
            session.send_message(ERROR, result.error)

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
                self._session.send_message(kind, body)
                self._session.skip_until_sync = True
                return False
            if kind == ord("2"):
                return True

    def _answer(self, outcome: Outcome, describe: bool) -> None:
        session = self._session
        if isinstance(outcome, Failure):
            session.send_raw(outcome.error)
            return
        if describe and outcome.row_description is not None:
            session.send_message(ord("T"), outcome.row_description)
        session.send_raw(b"".join(message(b"D", row) for row in outcome.raw_rows))
        session.send_raw(command_complete(outcome.tag))


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
