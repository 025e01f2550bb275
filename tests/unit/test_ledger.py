"""The session's transaction ledger (proxy.writes.ledger): which journal entries a
ROLLBACK TO undoes, what RELEASE merges, what the end of a transaction hands over."""

from __future__ import annotations

from proxy.writes.ledger import DeferredArchive, TxLedger
from tests.unit.test_plan import contact_table


def archive(*ids: str) -> DeferredArchive:
    return DeferredArchive("hubspot", "contacts", contact_table(), ids)


def test_empty_ledger_is_inactive_and_ignores_savepoints() -> None:
    ledger = TxLedger()
    ledger.savepoint("a")
    assert not ledger.active
    ledger.record([1])
    assert ledger.active
    # "a" was set before any entry: rolling back to it undoes everything.
    assert ledger.rollback_to("a") == [1]
    assert not ledger.active


def test_rollback_to_undoes_only_entries_after_the_savepoint() -> None:
    ledger = TxLedger()
    ledger.record([1, 2])
    ledger.savepoint("a")
    ledger.record([3])
    ledger.savepoint("b")
    ledger.record([4])
    assert ledger.rollback_to("b") == [4]
    assert ledger.rollback_to("b") == []  # the savepoint remains, nothing after it now
    ledger.record([5])
    assert ledger.rollback_to("a") == [3, 5]
    assert ledger.entry_ids == [1, 2]


def test_most_recent_savepoint_of_a_name_wins() -> None:
    ledger = TxLedger()
    ledger.record([1])
    ledger.savepoint("a")
    ledger.record([2])
    ledger.savepoint("a")
    ledger.record([3])
    assert ledger.rollback_to("a") == [3]
    assert ledger.entry_ids == [1, 2]


def test_release_merges_later_savepoints_into_the_parent() -> None:
    ledger = TxLedger()
    ledger.record([1])
    ledger.savepoint("a")
    ledger.record([2])
    ledger.savepoint("b")
    ledger.record([3])
    ledger.release("a")  # releases a and b
    # "b" is gone: PostgreSQL would refuse ROLLBACK TO b; an unknown name is taken
    # as older than every entry, which undoes everything (the safe side).
    assert ledger.rollback_to("b") == [1, 2, 3]


def test_release_of_an_unseen_savepoint_drops_every_marker() -> None:
    ledger = TxLedger()
    ledger.record([1])
    ledger.savepoint("a")
    ledger.record([2])
    ledger.release("outer")
    assert ledger.rollback_to("a") == [1, 2]


def test_deferred_archives_follow_savepoints_and_end() -> None:
    ledger = TxLedger()
    ledger.defer(archive("10"))
    assert ledger.active and ledger.entry_ids == []
    ledger.savepoint("s")
    ledger.defer(archive("11"))
    ledger.defer(archive())  # nothing to archive: not recorded
    assert [d.ids for d in ledger.deferred] == [("10",), ("11",)]
    assert ledger.rollback_to("s") == []
    assert [d.ids for d in ledger.deferred] == [("10",)]
    ledger.archived()
    assert ledger.deferred == [] and not ledger.active


def test_end_hands_over_and_resets() -> None:
    ledger = TxLedger(xid=77, proxy_block=True, dirty=True)
    ledger.record([1])
    ledger.defer(archive("9"))
    assert ledger.end() == (77, [1])
    assert (ledger.xid, ledger.proxy_block, ledger.active) == (None, False, False)
    assert ledger.end() == (None, [])


def test_knows_only_savepoints_seen_and_not_released() -> None:
    ledger = TxLedger()
    ledger.savepoint("early")  # before any entry: not tracked
    ledger.record([1])
    ledger.savepoint("a")
    assert ledger.knows("a") and not ledger.knows("early")
    ledger.release("a")
    assert not ledger.knows("a")


def test_discard_hands_over_everything_but_keeps_the_xid() -> None:
    ledger = TxLedger(xid=9)
    ledger.record([1])
    ledger.savepoint("a")
    ledger.record([2])
    ledger.defer(archive("5"))
    assert ledger.discard() == [1, 2]
    assert not ledger.active and ledger.deferred == [] and ledger.xid == 9
