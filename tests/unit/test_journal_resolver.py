"""The resolver's decisions, against an in-memory journal and vendor (no I/O)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from proxy.connectors.base import (
    ApiError,
    ApiObject,
    CallHooks,
    ErrorKind,
    Operation,
    Row,
    VendorCall,
)
from proxy.journal.model import (
    OPEN_STATES,
    UNKNOWN,
    Entry,
    EntryState,
    LaterWrite,
    Result,
    Verdict,
)
from proxy.journal.recovery import RecoveryLoop
from proxy.journal.resolver import Outcome, Resolver
from tests.unit.test_journal_model import T0, make_entry

S = EntryState
Op = Operation
Hooks = CallHooks | None


class FakeJournal:
    owner = "fake"

    def __init__(self, *entries: Entry, verdicts: dict[int, Verdict | None] | None = None):
        self.entries = {e.id: e for e in entries}
        self.verdicts = verdicts or {}
        self.released: list[tuple[int, float]] = []
        self.held: set[int] = set()  # claimed by someone else
        self.not_due: set[int] = set()  # released or backing off
        self.lose_lease = False
        self.purged: list[timedelta] = []
        self.filter_connectors = True  # False: a journal that ignores the claim filter
        self.fast_settled: list[int] = []

    async def claim(
        self,
        limit: int,
        owner: str | None = None,
        lease_s: float | None = None,
        connectors: Collection[str] | None = None,
    ) -> list[Entry]:
        due = [e for e in self._free(connectors) if e.id not in self.not_due]
        return due[:limit]

    async def claim_ids(
        self,
        ids: Iterable[int],
        owner: str | None = None,
        lease_s: float | None = None,
        connectors: Collection[str] | None = None,
    ) -> list[Entry]:
        return [e for e in self._free(connectors) if e.id in set(ids)]

    async def settle_committed(self, ids: Iterable[int], connectors: Collection[str]) -> list[int]:
        done = []
        for entry in self._free(connectors):
            if (
                entry.id in set(ids)
                and entry.state is S.APPLIED
                and not entry.rolled_back
                and self.verdicts.get(entry.xid) is C
            ):
                self.entries[entry.id] = replace(entry, state=S.COMMITTED)
                done.append(entry.id)
        self.fast_settled += done
        return done

    async def unowned(self, connectors: Collection[str], older_than_s: float) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self._free(None):
            if entry.connector not in connectors:
                counts[entry.connector] = counts.get(entry.connector, 0) + 1
        return counts

    async def known_ids(self, entry: Entry, ids: Any, table: Any) -> set[str]:
        return set()

    async def closed(self, ids: Iterable[int]) -> set[int]:
        return {i for i in ids if i in self.entries and self.entries[i].state not in OPEN_STATES}

    def _free(self, connectors: Collection[str] | None) -> list[Entry]:
        return [
            e
            for e in self.entries.values()
            if e.state in OPEN_STATES
            and e.id not in self.held
            and (connectors is None or not self.filter_connectors or e.connector in connectors)
        ]

    async def xact_status(self, xids: Iterable[int]) -> dict[int, Verdict | None]:
        return {x: self.verdicts.get(x) for x in xids}

    async def later_writers(
        self, entry: Entry, object_ids: Iterable[str]
    ) -> dict[str, list[LaterWrite]]:
        """Later entries of the fake that wrote the same objects: an update's inputs
        name the properties it wrote; other operations the whole object."""
        found: dict[str, list[LaterWrite]] = {}
        wanted = set(object_ids)
        for other in self.entries.values():
            if (
                other.id <= entry.id
                or other.xid == entry.xid
                or other.state in (EntryState.FAILED, EntryState.COMPENSATED)
            ):
                continue
            flags = {"rolled_back": other.rolled_back, "open": other.state in OPEN_STATES}
            if other.operation is Operation.UPDATE:
                for item in other.inputs:
                    if str(item.get("id")) in wanted:
                        props = frozenset(item.get("properties", {}))
                        found.setdefault(str(item["id"]), []).append(
                            LaterWrite(other.xid, props, **flags)
                        )
                continue
            named = {str(r.id) for r in other.results or () if r is not None and r.id}
            named |= {str(i["id"]) for i in other.inputs if "id" in i}
            for oid in named & wanted:
                found.setdefault(oid, []).append(LaterWrite(other.xid, None, **flags))
        return found

    async def release(
        self, ids: Iterable[int], owner: str | None = None, retry_in: float = 0.0
    ) -> int:
        self.released += [(i, retry_in) for i in ids]
        self.not_due.update(ids)
        return 1

    async def settle(
        self,
        entry: Entry,
        state: EntryState,
        *,
        results: Sequence[Result | None] | None = None,
        error: str | None = None,
        attempted: bool = True,
        retry_in: float = 0.0,
        owner: str | None = None,
    ) -> bool:
        stored = self.entries[entry.id]
        if self.lose_lease or stored.state is not entry.state:
            return False
        self.entries[entry.id] = replace(
            stored,
            state=state,
            results=tuple(results) if results is not None else stored.results,
            last_error=error,
            attempts=stored.attempts + attempted,
            next_attempt_at=T0 + timedelta(seconds=retry_in),
        )
        if retry_in:
            self.not_due.add(entry.id)
        return True

    async def purge(self, older_than: timedelta) -> int:
        self.purged.append(older_than)
        return 0


class FakeVendor:
    """A connector over a dict of objects; ``fail`` makes the next calls of a method
    raise. Every call is logged as (method, args)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.archived: set[str] = set()
        self.links: set[tuple[str, str]] = set()
        self.log: list[tuple[str, Any]] = []
        self.failures: dict[str, list[ApiError]] = {}
        self.found: list[ApiObject | None] = []

    def fail(self, method: str, kind: ErrorKind = ErrorKind.UNAVAILABLE, times: int = 1) -> None:
        self.failures[method] = [ApiError(kind, "injected", http_status=503)] * times

    def _enter(self, method: str, args: Any) -> None:
        self.log.append((method, args))
        if self.failures.get(method):
            raise self.failures[method].pop()

    def _obj(self, object_id: str) -> ApiObject:
        return ApiObject(object_id, dict(self.objects[object_id]), "", "")

    async def archive(self, object_type: str, ids: Sequence[str], *, hooks: Hooks = None) -> None:
        self._enter("archive", tuple(ids))
        self.archived.update(ids)

    async def update(
        self, object_type: str, changes: Sequence[tuple[str, Row]], *, hooks: Hooks = None
    ) -> list[ApiObject]:
        self._enter("update", [(i, dict(row)) for i, row in changes])
        for object_id, row in changes:
            self.objects[object_id].update(row)
        return [self._obj(i) for i, _ in changes]

    async def associate(
        self,
        from_type: str,
        to_type: str,
        pairs: Sequence[tuple[str, str]],
        *,
        remove: bool = False,
        hooks: Hooks = None,
    ) -> None:
        self._enter("dissociate" if remove else "associate", tuple(pairs))
        for pair in pairs:
            (self.links.discard if remove else self.links.add)(pair)

    async def get(
        self,
        object_type: str,
        object_id: str,
        *,
        id_property: str | None = None,
        properties: Sequence[str] | None = None,
    ) -> ApiObject | None:
        self._enter("get", object_id)
        if object_id in self.archived or object_id not in self.objects:
            return None
        return self._obj(object_id)

    async def find_created(
        self,
        call: VendorCall,
        since: datetime,
        *,
        unique_property: str | None = None,
        known: Any = None,
    ) -> list[ApiObject | None]:
        self._enter("find_created", (len(call.inputs), since, unique_property))
        return self.found[: len(call.inputs)]

    def calls(self, *methods: str) -> list[tuple[str, Any]]:
        return [c for c in self.log if not methods or c[0] in methods]


def resolver(journal: FakeJournal, vendor: FakeVendor, **options: Any) -> Resolver:
    return Resolver(
        journal,  # type: ignore[arg-type]
        {"hubspot": vendor},  # type: ignore[dict-item]
        "me",
        settle_s=options.pop("settle_s", 0.0),
        jitter=lambda: 1.0,
        clock=lambda: T0 + timedelta(hours=1),
        **options,
    )


def created(*ids: str) -> tuple[Result, ...]:
    return tuple(Result(i, True) for i in ids)


C, A, P = Verdict.COMMITTED, Verdict.ABORTED, Verdict.IN_PROGRESS


async def test_committed_entries_are_done_without_vendor_calls() -> None:
    entry = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: C}), FakeVendor()
    report = await resolver(journal, vendor).resolve_due()
    assert report.outcomes == {entry.id: Outcome.COMMITTED}
    assert journal.entries[entry.id].state is S.COMMITTED
    assert journal.entries[entry.id].attempts == 0
    assert vendor.log == []


async def test_aborted_create_is_archived() -> None:
    inputs = ({"properties": {"email": "a@x.io"}}, {"properties": {"email": "b@x.io"}})
    entry = make_entry(Op.CREATE, S.APPLIED, inputs, results=created("1", "2"), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    report = await resolver(journal, vendor).resolve([entry.id])
    assert report.outcomes == {entry.id: Outcome.COMPENSATED}
    assert vendor.calls() == [("archive", ("1", "2"))]
    assert journal.entries[entry.id].state is S.COMPENSATED


async def test_in_progress_entries_wait_and_are_released() -> None:
    entry = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: P}), FakeVendor()
    report = await resolver(journal, vendor, wait_s=0.5).resolve_due()
    assert report.outcomes == {entry.id: Outcome.WAITING}
    assert journal.released == [(entry.id, 0.5)]
    assert journal.entries[entry.id].state is S.APPLIED and vendor.log == []


def _update_entry(state: EntryState = S.APPLIED, **fields: Any) -> Entry:
    inputs = ({"id": "1", "properties": {"firstname": "New", "lastname": "Newer"}},)
    previous = {"1": {"firstname": "Old", "lastname": "Older"}}
    return make_entry(Op.UPDATE, state, inputs, previous=previous, xid=7, **fields)


async def test_rolled_back_update_is_restored_when_unchanged_since() -> None:
    entry = _update_entry(results=(Result("1", False),))
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    vendor.objects["1"] = {"firstname": "new", "lastname": "Newer"}  # normalised by vendor
    await resolver(journal, vendor).resolve([entry.id])
    assert vendor.calls("update") == [
        ("update", [("1", {"firstname": "Old", "lastname": "Older"})])
    ]
    assert journal.entries[entry.id].state is S.COMPENSATED


async def test_update_changed_by_someone_else_is_left_and_reported() -> None:
    entry = _update_entry(results=(Result("1", False),))
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    vendor.objects["1"] = {"firstname": "Theirs", "lastname": "Newer"}
    report = await resolver(journal, vendor).resolve([entry.id])
    assert report.outcomes == {entry.id: Outcome.CONFLICT}
    # only the property still holding our value is restored
    assert vendor.calls("update") == [("update", [("1", {"lastname": "Older"})])]
    assert vendor.objects["1"]["firstname"] == "Theirs"
    stored = journal.entries[entry.id]
    assert stored.state is S.CONFLICT
    assert stored.last_error is not None and "firstname changed" in stored.last_error
    assert "Theirs" not in stored.last_error  # no values in the journal's messages


async def test_update_that_never_landed_needs_no_restore() -> None:
    entry = _update_entry(state=S.UNKNOWN, results=(UNKNOWN,))
    journal, vendor = FakeJournal(entry, verdicts={7: C}), FakeVendor()
    vendor.objects["1"] = {"firstname": "Old", "lastname": "Older"}
    await resolver(journal, vendor).resolve_due()
    assert vendor.calls("update") == []
    assert journal.entries[entry.id].state is S.COMPENSATED


async def test_lost_create_is_looked_up_recorded_and_archived() -> None:
    inputs = ({"properties": {"email": "a@x.io"}}, {"properties": {"email": "b@x.io"}})
    entry = make_entry(Op.CREATE, S.INTENT, inputs, xid=7, lookup_property="email")
    journal, vendor = FakeJournal(entry, verdicts={7: C}), FakeVendor()
    vendor.found = [ApiObject("55", {}, "", ""), None]
    report = await resolver(journal, vendor).resolve_due()
    assert report.outcomes == {entry.id: Outcome.COMPENSATED}
    assert vendor.calls() == [("find_created", (2, T0, "email")), ("archive", ("55",))]
    assert journal.entries[entry.id].results == (Result("55", True), None)


async def test_only_the_lost_inputs_are_looked_up() -> None:
    inputs = ({"properties": {"n": "1"}}, {"properties": {"n": "2"}})
    entry = make_entry(Op.CREATE, S.UNKNOWN, inputs, results=(Result("1", True), UNKNOWN), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    vendor.found = [ApiObject("2", {}, "", "")]
    await resolver(journal, vendor).resolve_due()
    assert vendor.calls()[0] == ("find_created", (1, T0, None))
    assert vendor.calls("archive") == [("archive", ("1", "2"))]


async def test_unanswered_entries_settle_before_lookup() -> None:
    entry = make_entry(Op.CREATE, S.UNKNOWN, results=(UNKNOWN,), xid=7, updated_at=T0)
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    report = await resolver(journal, vendor, settle_s=7200).resolve_due()
    assert report.outcomes == {entry.id: Outcome.WAITING} and vendor.log == []


async def test_vendor_failure_keeps_the_entry_due_with_backoff() -> None:
    entry = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    vendor.fail("archive", times=2)
    resolve = resolver(journal, vendor, backoff_base_s=2.0, backoff_cap_s=5.0)
    for attempt, wait in ((1, 2.0), (2, 4.0)):
        report = await resolve.resolve([entry.id])
        assert report.outcomes == {entry.id: Outcome.RETRYING}
        stored = journal.entries[entry.id]
        assert (stored.state, stored.attempts) == (S.COMPENSATING, attempt)
        assert stored.next_attempt_at == T0 + timedelta(seconds=wait)
        assert stored.last_error == "unavailable, HTTP 503: injected"
    report = await resolve.resolve([entry.id])
    assert report.outcomes == {entry.id: Outcome.COMPENSATED}
    assert vendor.archived == {"1"}


async def test_lookup_results_survive_a_failed_compensation() -> None:
    entry = make_entry(Op.CREATE, S.INTENT, xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    vendor.found = [ApiObject("55", {}, "", "")]
    vendor.fail("archive")
    await resolver(journal, vendor).resolve([entry.id])
    stored = journal.entries[entry.id]
    assert stored.state is S.COMPENSATING and stored.results == (Result("55", True),)
    await resolver(journal, vendor).resolve([entry.id])
    assert len(vendor.calls("find_created")) == 1  # not looked up again
    assert journal.entries[entry.id].state is S.COMPENSATED and vendor.archived == {"55"}


async def test_aborted_archive_is_reported_not_undone() -> None:
    entry = make_entry(Op.ARCHIVE, S.APPLIED, ({"id": "1"}, {"id": "2"}), results=(), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    vendor.objects.update({"1": {}, "2": {}})
    vendor.archived.add("2")
    report = await resolver(journal, vendor).resolve([entry.id])
    assert report.outcomes == {entry.id: Outcome.CONFLICT}
    assert [c[0] for c in vendor.log] == ["get", "get"]
    error = journal.entries[entry.id].last_error
    assert error is not None and "archived at the vendor (2)" in error


async def test_archive_that_never_happened_is_not_a_conflict() -> None:
    entry = make_entry(Op.ARCHIVE, S.INTENT, ({"id": "1"},), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    vendor.objects["1"] = {}
    report = await resolver(journal, vendor).resolve([entry.id])
    assert report.outcomes == {entry.id: Outcome.COMPENSATED}


async def test_a_transactions_calls_are_undone_latest_first() -> None:
    create = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7, id=100)
    link = make_entry(
        Op.ASSOCIATE,
        S.APPLIED,
        ({"from": "1", "to": "9", "toObjectType": "deals"},),
        results=(),
        xid=7,
        id=101,
    )
    journal, vendor = FakeJournal(create, link, verdicts={7: A}), FakeVendor()
    vendor.links.add(("1", "9"))
    await resolver(journal, vendor).resolve_due()
    assert vendor.calls() == [("dissociate", (("1", "9"),)), ("archive", ("1",))]
    assert vendor.links == set()


async def test_dissociating_a_gone_object_counts_as_done() -> None:
    link = make_entry(
        Op.ASSOCIATE, S.APPLIED, ({"from": "1", "to": "9", "toObjectType": "deals"},), xid=7
    )
    journal, vendor = FakeJournal(link, verdicts={7: A}), FakeVendor()
    vendor.fail("dissociate", ErrorKind.NOT_FOUND)
    report = await resolver(journal, vendor).resolve_due()
    assert report.outcomes == {link.id: Outcome.COMPENSATED}


async def test_entries_held_elsewhere_are_busy() -> None:
    entry = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    journal.held.add(entry.id)
    report = await resolver(journal, vendor).resolve([entry.id, 999])
    assert report.outcomes == {entry.id: Outcome.BUSY, 999: Outcome.BUSY}
    assert vendor.log == []


async def test_entries_already_closed_are_settled_at_once() -> None:
    """A call the vendor rejected (failed) leaves nothing to undo: the live path must
    not wait for it as if someone else held it."""
    rejected = make_entry(Op.CREATE, S.FAILED, xid=7)
    journal, vendor = FakeJournal(rejected, verdicts={7: A}), FakeVendor()
    report = await resolver(journal, vendor).resolve([rejected.id])
    assert report.outcomes == {rejected.id: Outcome.SETTLED}
    assert vendor.log == []


async def test_a_lost_lease_writes_nothing() -> None:
    entry = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: C}), FakeVendor()
    journal.lose_lease = True
    report = await resolver(journal, vendor).resolve_due()
    assert report.outcomes == {entry.id: Outcome.LOST}
    assert journal.entries[entry.id].state is S.APPLIED


async def test_entries_of_connectors_it_lacks_are_left_for_a_proxy_that_has_them() -> None:
    """Proxies with different connector sets may share a journal: one without the
    entry's connector neither claims it nor puts it in backoff (a proxy that has the
    connector resolves it at once)."""
    entry = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7, connector="gone")
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    assert (await resolver(journal, vendor).resolve_due()).outcomes == {}
    assert (await resolver(journal, vendor).resolve([entry.id])).outcomes == {
        entry.id: Outcome.BUSY
    }
    assert journal.entries[entry.id] == entry and journal.released == [] and vendor.log == []

    journal.filter_connectors = False  # claimed anyway: released untouched, no backoff
    report = await resolver(journal, vendor).resolve_due()
    assert report.outcomes == {entry.id: Outcome.BUSY}
    assert journal.entries[entry.id] == entry and journal.released == [(entry.id, 0.0)]


async def test_recovery_loop_reports_entries_no_connector_of_its_own_can_resolve(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mine = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7)
    gone = make_entry(Op.CREATE, S.APPLIED, results=created("2"), xid=8, connector="gone")
    journal, vendor = FakeJournal(mine, gone, verdicts={7: A, 8: A}), FakeVendor()
    loop = RecoveryLoop(resolver(journal, vendor), retention=None, unowned_after_s=60.0)
    with caplog.at_level(logging.WARNING, logger="proxy.journal.recovery"):
        report = await loop.run_once()
        await loop.run_once()  # checked at most once a minute: one warning
    assert report.outcomes == {mine.id: Outcome.COMPENSATED}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "1 open entries of connector 'gone'" in warnings[0]
    assert journal.entries[gone.id] == gone


async def test_too_old_to_know_is_a_conflict() -> None:
    entry = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: None}), FakeVendor()
    report = await resolver(journal, vendor).resolve_due()
    assert report.outcomes == {entry.id: Outcome.CONFLICT} and vendor.log == []


async def test_recovery_loop_runs_at_start_then_periodically_and_purges() -> None:
    entry = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7)
    journal, vendor = FakeJournal(entry, verdicts={7: A}), FakeVendor()
    loop = RecoveryLoop(resolver(journal, vendor), interval_s=0.01, retention=timedelta(days=3))
    first = await loop.start()
    try:
        assert first.outcomes == {entry.id: Outcome.COMPENSATED}
        assert journal.purged == [timedelta(days=3)]
        later = make_entry(Op.CREATE, S.APPLIED, results=created("2"), xid=8)
        journal.entries[later.id] = later
        journal.verdicts[8] = A
        for _ in range(200):
            if vendor.archived == {"1", "2"}:
                break
            await asyncio.sleep(0.005)
        assert vendor.archived == {"1", "2"}
        assert journal.purged == [timedelta(days=3)]  # hourly, not every pass
    finally:
        await loop.stop()


async def test_verdicts_are_asked_once_per_pass() -> None:
    entries = [make_entry(Op.CREATE, S.APPLIED, results=created(str(i)), xid=i) for i in range(5)]
    journal, vendor = FakeJournal(*entries, verdicts=dict.fromkeys(range(5), C)), FakeVendor()
    asked: list[set[int]] = []
    real = journal.xact_status

    async def counting(xids: Iterable[int]) -> dict[int, Verdict | None]:
        asked.append(set(xids))
        return await real(xids)

    journal.xact_status = counting  # type: ignore[method-assign]
    await resolver(journal, vendor).resolve_due()
    assert asked == [set(range(5))]


@pytest.mark.parametrize("verdict", [C, A])
async def test_upsert_inverse_runs_through_the_connector(verdict: Verdict) -> None:
    inputs = (
        {"id": "a@x.io", "idProperty": "email", "properties": {"email": "a@x.io", "n": "1"}},
        {"id": "b@x.io", "idProperty": "email", "properties": {"email": "b@x.io", "n": "2"}},
    )
    entry = make_entry(
        Op.UPSERT,
        S.UNKNOWN,
        inputs,
        results=(UNKNOWN, UNKNOWN),
        previous={"b@x.io": {"n": "1"}},
        xid=7,
    )
    journal, vendor = FakeJournal(entry, verdicts={7: verdict}), FakeVendor()
    vendor.objects["31"] = {"email": "b@x.io", "n": "2"}
    vendor.found = [
        ApiObject("30", {}, "", "", created=True),
        ApiObject("31", {}, "", "", created=False),
    ]
    await resolver(journal, vendor).resolve_due()
    assert vendor.calls("archive", "update") == [
        ("archive", ("30",)),
        ("update", [("31", {"n": "1"})]),
    ]
    assert journal.entries[entry.id].state is S.COMPENSATED


# -- a later committed write of the same object wins over an undo -----------------------


async def test_create_adopted_by_a_later_committed_upsert_is_not_archived() -> None:
    """A's create (aborted) made object 9; B's upsert (committed later) updated it: the
    object is B's now, archiving it would leave B's local row without its object."""
    a = make_entry(Op.CREATE, S.APPLIED, results=created("9"), xid=7)
    b = make_entry(
        Op.UPSERT,
        S.APPLIED,
        results=(Result("9", False),),
        xid=8,
        inputs=({"id": "a@x.io", "idProperty": "email", "properties": {"company": "B"}},),
    )
    journal, vendor = FakeJournal(a, b, verdicts={7: A, 8: C}), FakeVendor()
    vendor.objects["9"] = {"email": "a@x.io", "company": "B"}
    report = await resolver(journal, vendor).resolve([a.id])
    assert report.outcomes == {a.id: Outcome.COMPENSATED}
    assert vendor.calls("archive") == []


async def test_undo_waits_while_a_later_write_of_the_object_is_in_progress() -> None:
    a = make_entry(Op.CREATE, S.APPLIED, results=created("9"), xid=7)
    b = make_entry(
        Op.UPDATE,
        S.APPLIED,
        results=(Result("9", False),),
        xid=8,
        inputs=({"id": "9", "properties": {"company": "B"}},),
    )
    journal, vendor = FakeJournal(a, b, verdicts={7: A, 8: P}), FakeVendor()
    report = await resolver(journal, vendor).resolve([a.id])
    assert report.outcomes == {a.id: Outcome.WAITING}
    assert vendor.log == []


async def test_restore_skips_only_objects_a_later_committed_write_changed() -> None:
    """ABA: B set the same value A had set; compare-first alone would restore over it."""
    a = make_entry(
        Op.UPDATE,
        S.APPLIED,
        xid=7,
        results=(Result("9", False), Result("10", False)),
        inputs=(
            {"id": "9", "properties": {"company": "New"}},
            {"id": "10", "properties": {"company": "New"}},
        ),
        previous={"9": {"company": "Old"}, "10": {"company": "Old"}},
    )
    b = make_entry(
        Op.UPDATE,
        S.APPLIED,
        xid=8,
        results=(Result("9", False),),
        inputs=({"id": "9", "properties": {"company": "New"}},),
    )
    journal, vendor = FakeJournal(a, b, verdicts={7: A, 8: C}), FakeVendor()
    vendor.objects["9"] = {"company": "New"}
    vendor.objects["10"] = {"company": "New"}
    await resolver(journal, vendor).resolve([a.id])
    assert vendor.objects["9"]["company"] == "New"  # B's committed value stays
    assert vendor.objects["10"]["company"] == "Old"


async def test_a_later_committed_write_protects_only_the_properties_it_wrote() -> None:
    """A's rolled-back update set lastname; B's committed update set firstname of the
    same contact: A's lastname is still restored, B's firstname stays."""
    a = make_entry(
        Op.UPDATE,
        S.APPLIED,
        xid=7,
        results=(Result("9", False),),
        inputs=({"id": "9", "properties": {"lastname": "clark"}},),
        previous={"9": {"lastname": "adams"}},
    )
    b = make_entry(
        Op.UPDATE,
        S.APPLIED,
        xid=8,
        results=(Result("9", False),),
        inputs=({"id": "9", "properties": {"firstname": "bob"}},),
    )
    journal, vendor = FakeJournal(a, b, verdicts={7: A, 8: C}), FakeVendor()
    vendor.objects["9"] = {"lastname": "clark", "firstname": "bob"}
    await resolver(journal, vendor).resolve([a.id])
    assert vendor.objects["9"] == {"lastname": "adams", "firstname": "bob"}


async def test_a_case_only_change_is_undone() -> None:
    """The old and the new value differ only in case: the restore must not take the
    vendor's current value for the old one."""
    a = make_entry(
        Op.UPDATE,
        S.APPLIED,
        xid=7,
        results=(Result("9", False),),
        inputs=({"id": "9", "properties": {"company": "ACME", "phone": "007"}},),
        previous={"9": {"company": "acme", "phone": "7"}},
    )
    journal, vendor = FakeJournal(a, verdicts={7: A}), FakeVendor()
    vendor.objects["9"] = {"company": "ACME", "phone": "007"}
    await resolver(journal, vendor).resolve([a.id])
    assert vendor.objects["9"] == {"company": "acme", "phone": "7"}


async def test_later_write_that_aborted_does_not_protect_the_object() -> None:
    a = make_entry(Op.CREATE, S.APPLIED, results=created("9"), xid=7)
    b = make_entry(
        Op.UPDATE,
        S.COMPENSATED,
        xid=8,
        results=(Result("9", False),),
        inputs=({"id": "9", "properties": {"company": "B"}},),
    )
    journal, vendor = FakeJournal(a, b, verdicts={7: A, 8: A}), FakeVendor()
    vendor.objects["9"] = {"company": "B"}
    await resolver(journal, vendor).resolve([a.id])
    assert vendor.archived == {"9"}


@pytest.mark.parametrize(
    ("verdict", "rolled_back"),
    [(A, False), (C, True), (P, True)],
    ids=["aborted", "savepoint", "savepoint-open"],
)
async def test_an_undo_waits_for_the_undo_of_a_later_rolled_back_write(
    verdict: Verdict, rolled_back: bool
) -> None:
    """Two rolled-back updates of one contact, A's then B's (B locked the row once A's
    transaction ended, so both found phone '1'): the vendor holds B's value. A's undo
    first would find neither its own value nor the old one and report a conflict; it
    waits for B's undo, which puts back '1', and then has nothing left to do."""
    a = make_entry(
        Op.UPDATE,
        S.APPLIED,
        xid=7,
        results=(Result("9", False),),
        inputs=({"id": "9", "properties": {"phone": "3"}},),
        previous={"9": {"phone": "1"}},
    )
    b = make_entry(
        Op.UPDATE,
        S.APPLIED,
        xid=8,
        rolled_back=rolled_back,
        results=(Result("9", False),),
        inputs=({"id": "9", "properties": {"phone": None}},),
        previous={"9": {"phone": "1"}},
    )
    journal, vendor = FakeJournal(a, b, verdicts={7: A, 8: verdict}), FakeVendor()
    vendor.objects["9"] = {"phone": None}
    report = await resolver(journal, vendor).resolve([a.id])
    assert report.outcomes == {a.id: Outcome.WAITING}
    assert vendor.log == []
    report = await resolver(journal, vendor).resolve([b.id])
    assert report.outcomes == {b.id: Outcome.COMPENSATED}
    report = await resolver(journal, vendor).resolve([a.id])
    assert report.outcomes == {a.id: Outcome.COMPENSATED}
    assert vendor.objects["9"] == {"phone": "1"}


async def test_the_live_path_settles_committed_answers_in_one_step() -> None:
    """An applied call of a committed transaction is done without a claim; the others
    (rolled back to a savepoint, or of an aborted transaction) take the full path."""
    done = make_entry(Op.CREATE, S.APPLIED, results=created("1"), xid=7)
    undone = make_entry(Op.CREATE, S.APPLIED, results=created("2"), xid=7, rolled_back=True)
    aborted = make_entry(Op.CREATE, S.APPLIED, results=created("3"), xid=8)
    journal = FakeJournal(done, undone, aborted, verdicts={7: C, 8: A})
    vendor = FakeVendor()
    report = await resolver(journal, vendor).resolve([done.id, undone.id, aborted.id])
    assert journal.fast_settled == [done.id]
    assert report.outcomes == {
        done.id: Outcome.COMMITTED,
        undone.id: Outcome.COMPENSATED,
        aborted.id: Outcome.COMPENSATED,
    }
    assert vendor.archived == {"2", "3"}
