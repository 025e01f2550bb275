"""The one explicit state of a client session, and the moves allowed between states.

A session is in exactly one phase; ``check_move`` refuses any other move, so a bug
shows as an assertion instead of a session quietly doing two things at once (asyncpg's
``_set_state`` guard, PgBouncer's per-phase handlers).
"""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    STARTUP = "startup"  # reading the startup packet (and SSL/GSSENC/cancel requests)
    CONNECTING = "connecting"  # opening the upstream connection
    AUTHENTICATING = "authenticating"  # relaying the upstream's authentication exchange
    RELAYING = "relaying"  # steady state: bytes forwarded as they come
    INTERCEPTING = "intercepting"  # the proxy drives the session around a synced write
    CLOSED = "closed"


_MOVES: dict[Phase, frozenset[Phase]] = {
    Phase.STARTUP: frozenset({Phase.CONNECTING, Phase.CLOSED}),
    Phase.CONNECTING: frozenset({Phase.AUTHENTICATING, Phase.CLOSED}),
    Phase.AUTHENTICATING: frozenset({Phase.RELAYING, Phase.CLOSED}),
    Phase.RELAYING: frozenset({Phase.INTERCEPTING, Phase.CLOSED}),
    Phase.INTERCEPTING: frozenset({Phase.RELAYING, Phase.CLOSED}),
    Phase.CLOSED: frozenset({Phase.CLOSED}),
}


class IllegalMove(AssertionError):
    pass


def check_move(current: Phase, new: Phase) -> Phase:
    """``new`` if a session in ``current`` may move there; raises otherwise."""
    if new not in _MOVES[current]:
        raise IllegalMove(f"session cannot move from {current.value} to {new.value}")
    return new


#: Phases in which the client has a working upstream session.
READY_PHASES = frozenset({Phase.RELAYING, Phase.INTERCEPTING})
