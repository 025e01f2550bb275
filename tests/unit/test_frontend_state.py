"""The expected-reply queue and the session's phase guard."""

from __future__ import annotations

import pytest

from proxy.backend.expected import LAST_REPLY, ExpectedReplies
from proxy.frontend.phase import IllegalMove, Phase, check_move
from proxy.wire.codes import Backend, Frontend


def test_queue_tracks_only_messages_answered_before_sync() -> None:
    queue = ExpectedReplies()
    for kind in (
        Frontend.PARSE,
        Frontend.BIND,
        Frontend.COPY_DATA,
        Frontend.FLUSH,
        Frontend.DESCRIBE,
        Frontend.EXECUTE,
        Frontend.CLOSE,
    ):
        queue.sent(kind)
    owed = queue.take()
    assert [e.request for e in owed] == [
        Frontend.PARSE,
        Frontend.BIND,
        Frontend.DESCRIBE,
        Frontend.EXECUTE,
        Frontend.CLOSE,
    ]
    assert owed[0].last == {Backend.PARSE_COMPLETE}
    assert owed[2].last == {Backend.ROW_DESCRIPTION, Backend.NO_DATA}
    assert owed[3].last == {
        Backend.COMMAND_COMPLETE,
        Backend.EMPTY_QUERY_RESPONSE,
        Backend.PORTAL_SUSPENDED,
    }
    assert len(queue) == 0 and queue.take() == []


def test_sync_clears_the_queue() -> None:
    queue = ExpectedReplies()
    queue.sent(Frontend.PARSE)
    queue.synced()
    assert len(queue) == 0


def test_every_sync_point_ends_with_ready_for_query() -> None:
    for kind in (Frontend.QUERY, Frontend.SYNC, Frontend.FUNCTION_CALL):
        assert LAST_REPLY[kind] == {Backend.READY_FOR_QUERY}


def test_codes_differ_by_direction() -> None:
    assert Frontend.EXECUTE == Backend.ERROR_RESPONSE == ord("E")
    assert Frontend.EXECUTE.byte == b"E"


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (Phase.STARTUP, Phase.CONNECTING),
        (Phase.CONNECTING, Phase.AUTHENTICATING),
        (Phase.AUTHENTICATING, Phase.RELAYING),
        (Phase.RELAYING, Phase.INTERCEPTING),
        (Phase.INTERCEPTING, Phase.RELAYING),
        (Phase.RELAYING, Phase.CLOSED),
        (Phase.CLOSED, Phase.CLOSED),
    ],
)
def test_allowed_moves(current: Phase, new: Phase) -> None:
    assert check_move(current, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (Phase.STARTUP, Phase.RELAYING),
        (Phase.CONNECTING, Phase.INTERCEPTING),
        (Phase.CLOSED, Phase.RELAYING),
        (Phase.INTERCEPTING, Phase.AUTHENTICATING),
    ],
)
def test_illegal_moves(current: Phase, new: Phase) -> None:
    with pytest.raises(IllegalMove):
        check_move(current, new)
