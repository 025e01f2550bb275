"""The steady state of a session: client messages forwarded byte-for-byte.

Each complete client message is checked only for its type and length (a frame
PostgreSQL would reject never reaches it), and Sync-point messages are counted so the
session always knows whether the upstream is busy. When synced tables are configured,
Query/Parse/Bind/Execute/Close are also looked at (cached, cheap) to find the first
message that involves a synced write — or, while the client's transaction holds vendor
changes, a transaction-control statement; everything before it is forwarded and the
session hands over to the interceptor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from proxy.frontend.state import Conversation, SyncedState
from proxy.sql.txcontrol import TxControl, TxKind, may_control_transaction, transaction_controls
from proxy.wire.codes import SYNC_POINTS, Frontend
from proxy.wire.framing import (
    FRONTEND_READY_TYPES,
    FRONTEND_SMALL_TYPES,
    INT32,
    MAX_SMALL_MESSAGE,
    frame_problem,
)
from proxy.wire.messages import extended
from proxy.wire.messages.bind import portal_and_statement
from proxy.wire.messages.error_response import protocol_violation
from proxy.wire.messages.parse import Parse, statement_name
from proxy.writes.router import WriteRouter

QUERY = Frontend.QUERY
PARSE = Frontend.PARSE
BIND = Frontend.BIND
EXECUTE = Frontend.EXECUTE
CLOSE = Frontend.CLOSE
TERMINATE = Frontend.TERMINATE
#: Messages that may start or use a synced write.
WATCHED = frozenset((QUERY, PARSE, BIND, EXECUTE, CLOSE))


#: DDL that can make a relation a synced table, or a view or rule over one (temporary
#: relations aside): a session that runs it has the catalog read again afterwards.
CATALOG_DDL = re.compile(
    r"\b(?:CREATE|ALTER|DROP)\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+|MATERIALIZED\s+|RECURSIVE\s+)?"
    r"(?:TABLE|VIEW|RULE|SCHEMA|TRIGGER)\b",
    re.IGNORECASE,
)


class Forwarder(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> None: ...


class ClientRelay:
    """Forwards one session's client messages; owns the partial-message buffer."""

    __slots__ = ("_conv", "_fail", "_intercept", "_limit", "_router", "_synced", "_upstream", "buf")

    def __init__(
        self,
        upstream: Forwarder,
        conv: Conversation,
        limit: int,
        router: WriteRouter | None,
        synced: SyncedState | None,
        fail: Callable[[bytes], None],
        intercept: Callable[[], None],
    ) -> None:
        self._upstream = upstream
        self._conv = conv
        self._limit = limit
        self._router = router
        self._synced = synced
        self._fail = fail
        self._intercept = intercept
        self.buf = bytearray()

    def client_data(self, data: bytes) -> None:
        """Forward every complete client message; keep a partial one for later."""
        buf = self.buf
        if buf:
            buf += data
            data = buf  # type: ignore[assignment]
        n = len(data)
        pos = 0
        syncs = 0
        limit = self._limit
        watch = self._router is not None
        expected = self._conv.expected
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
                if kind in WATCHED and self._involves_synced_write(kind, data[pos + 5 : end]):
                    self._forward(data, pos, syncs)
                    self.buf = bytearray(data[pos:])
                    self._intercept()
                    return
                if kind in SYNC_POINTS:
                    expected.synced()
                else:
                    expected.sent(kind)
                    if kind == EXECUTE:
                        assert self._synced is not None
                        self._synced.ledger.dirty = True
            if kind in SYNC_POINTS:
                syncs += 1
            elif kind == TERMINATE:
                self._conv.terminating = True  # the upstream will close: that is no error
            pos = end
        self._forward(data, pos, syncs)
        if pos == n:
            if buf:
                # The transport may still hold this very buffer (uvloop queues it
                # without copying when the upstream is behind): never resize it.
                self.buf = bytearray()
        elif not buf:
            self.buf = bytearray(data[pos:])
        else:
            del buf[:pos]

    def _forward(self, data: bytes | bytearray, end: int, syncs: int) -> None:
        if not end:
            return
        self._upstream.write(data if end == len(data) else data[:end])
        self._conv.pending_syncs += syncs

    def _involves_synced_write(self, kind: int, body: bytes) -> bool:
        """Does this message start or use a statement the interceptor must handle?"""
        router = self._router
        synced = self._synced
        assert router is not None and synced is not None
        if kind == QUERY:
            sql = body[:-1].decode(errors="surrogateescape")
            if CATALOG_DDL.search(sql):
                synced.catalog_changed = True
            if not router.classify(sql).passthrough:
                return True
            return synced.ledger.active and bool(transaction_controls(sql))
        if kind == PARSE:
            try:
                sql = Parse.decode(body).query
                name = statement_name(body)
            except ValueError:
                return False  # malformed: PostgreSQL refuses it before running anything
            if CATALOG_DDL.search(sql):
                synced.catalog_changed = True
            if not router.classify(sql).passthrough:
                return True
            if synced.statements:
                synced.statements.pop(name, None)
            if may_control_transaction(sql):
                if synced.ledger.active:
                    return True
                synced.controls[name] = transaction_controls(sql)
            elif synced.controls:
                synced.controls.pop(name, None)
            return False
        if kind == BIND:
            if not (
                synced.statements or synced.controls or synced.portals or synced.control_portals
            ):
                return False
            portal, statement = portal_and_statement(body)
            if statement in synced.statements:
                return True
            synced.portals.pop(portal, None)
            controls = synced.controls.get(statement)
            if controls:
                if synced.ledger.active:
                    return True
                synced.control_portals[portal] = controls
            elif synced.control_portals:
                synced.control_portals.pop(portal, None)
            return False
        if kind == EXECUTE:
            if not synced.portals and not synced.control_portals:
                return False
            portal = extended.execute_portal(body)
            if portal in synced.portals:
                return True
            controls = synced.control_portals.get(portal)
            if not controls:
                return False
            if synced.ledger.active:
                return True
            note_begin(synced, controls)
            return False
        if not synced.statements and not synced.controls:
            return False
        synced.forget(*extended.target_name(body))  # Close
        return False


def note_begin(synced: SyncedState, controls: tuple[TxControl, ...]) -> None:
    """An Execute of BEGIN/START: the client opened its own block in this pipeline."""
    if any(control.kind is TxKind.BEGIN for control in controls):
        synced.ledger.client_began = True
