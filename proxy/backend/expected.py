"""What the upstream still owes: the expected-reply queue.

In the extended protocol the server answers each message (Parse, Bind, Describe,
Execute, Close) with one or more replies, the last of which is known in advance, and
answers nothing more until Sync. When the proxy takes over a session in the middle of a
pipeline it must first relay the replies still owed for what was forwarded without a
Sync, and no more; messages the proxy itself sends carry a Flush and are followed the
same way (PgDog's ``backend/protocol/state.rs`` keeps such a queue).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.wire.codes import Backend, Frontend

_ENDS_PARSE = frozenset((Backend.PARSE_COMPLETE,))
_ENDS_BIND = frozenset((Backend.BIND_COMPLETE,))
_ENDS_CLOSE = frozenset((Backend.CLOSE_COMPLETE,))
_ENDS_DESCRIBE = frozenset((Backend.ROW_DESCRIPTION, Backend.NO_DATA))
_ENDS_EXECUTE = frozenset(
    (Backend.COMMAND_COMPLETE, Backend.EMPTY_QUERY_RESPONSE, Backend.PORTAL_SUSPENDED)
)
_ENDS_CYCLE = frozenset((Backend.READY_FOR_QUERY,))

#: The last reply to each client message (an ErrorResponse also ends any of them).
LAST_REPLY: dict[int, frozenset[int]] = {
    Frontend.PARSE: _ENDS_PARSE,
    Frontend.BIND: _ENDS_BIND,
    Frontend.CLOSE: _ENDS_CLOSE,
    Frontend.DESCRIBE: _ENDS_DESCRIBE,
    Frontend.EXECUTE: _ENDS_EXECUTE,
    Frontend.QUERY: _ENDS_CYCLE,
    Frontend.SYNC: _ENDS_CYCLE,
    Frontend.FUNCTION_CALL: _ENDS_CYCLE,
}
#: Client messages answered before the next Sync (the ones the queue tracks).
ANSWERED_BEFORE_SYNC = frozenset(
    (Frontend.PARSE, Frontend.BIND, Frontend.EXECUTE, Frontend.CLOSE, Frontend.DESCRIBE)
)


@dataclass(frozen=True, slots=True)
class Expected:
    """The answer owed to one message: it ends with any reply in ``last``."""

    request: int
    last: frozenset[int]


class ExpectedReplies:
    """Replies owed for messages relayed since the last Sync, in order."""

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: list[Expected] = []

    def __len__(self) -> int:
        return len(self._queue)

    def sent(self, kind: int) -> None:
        """A message of ``kind`` went upstream (only answered-before-Sync kinds count;
        COPY data and Flush get no reply, so they never pile up here)."""
        if kind in ANSWERED_BEFORE_SYNC:
            self._queue.append(Expected(kind, LAST_REPLY[kind]))

    def synced(self) -> None:
        """A Sync (or Query) went upstream: everything before it is answered by then."""
        self._queue.clear()

    def take(self) -> list[Expected]:
        """Hand over what is owed now, and forget it."""
        owed, self._queue = self._queue, []
        return owed
