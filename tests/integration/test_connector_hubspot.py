"""The HubSpot connector against the sandbox over real HTTP: batching, codec, errors,
retries, compensation and the journal hooks."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from proxy.connectors import build_connector
from proxy.connectors.base import (
    SQLSTATE,
    ApiError,
    ApiObject,
    CallOutcome,
    ErrorKind,
    Operation,
    VendorCall,
)
from proxy.connectors.batches import plan_batches
from proxy.connectors.hubspot import HubSpotConnector, HubSpotSettings
from proxy.connectors.ratelimit import RollingWindowLimiter
from proxy.sandbox.hubspot import ObjectTypeSpec, PropertyDef, SandboxConfig
from proxy.sandbox.hubspot.schema import PropertyOption
from proxy.sandbox.server import BackgroundSandbox

TOKEN = "sandbox-token"
CONFIG = SandboxConfig(
    object_types={
        "contacts": ObjectTypeSpec(
            properties=[
                PropertyDef(name="user_id", label="User", type="number", field_type="number"),
                PropertyDef(name="vip", label="VIP", type="bool", field_type="booleancheckbox"),
                PropertyDef(name="born", label="Born", type="date", field_type="date"),
                PropertyDef(name="seen", label="Seen", type="datetime", field_type="date"),
                PropertyDef(
                    name="tags",
                    label="Tags",
                    type="enumeration",
                    field_type="checkbox",
                    options=[PropertyOption(label=v, value=v) for v in "ab"],
                ),
            ]
        ),
        "pets": ObjectTypeSpec(
            properties=[PropertyDef(name="name", label="Name", type="string", field_type="text")],
            required=["name"],
        ),
    }
)


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundSandbox]:
    with BackgroundSandbox(CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def control_client(server: BackgroundSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as client:
        yield client


@pytest.fixture
def control(control_client: httpx.Client) -> httpx.Client:
    """The sandbox's `/_sandbox/` side, reset for each test."""
    control_client.post("/_sandbox/reset").raise_for_status()
    return control_client


def settings(url: str, **overrides: object) -> HubSpotSettings:
    fast = {
        "token": TOKEN,
        "base_url": url,
        "read_timeout_s": 2.0,
        "max_attempts": 3,
        "backoff_base_s": 0.01,
        "backoff_cap_s": 1.0,
        "ten_secondly_wait_s": 0.05,
        "locked_wait_s": 0.05,
    }
    return HubSpotSettings.model_validate(fast | overrides)


@pytest.fixture
async def hubspot(
    server: BackgroundSandbox, control: httpx.Client
) -> AsyncIterator[HubSpotConnector]:
    connector = HubSpotConnector(settings(server.url))
    yield connector
    await connector.aclose()


class Recorder:
    """CallHooks that remember every announcement, as the journal would."""

    def __init__(self) -> None:
        self.events: list[tuple[str, VendorCall, CallOutcome | None]] = []

    async def before_send(self, call: VendorCall) -> None:
        self.events.append(("before", call, None))

    async def after_send(self, call: VendorCall, outcome: CallOutcome) -> None:
        self.events.append(("after", call, outcome))


def requests(control: httpx.Client, method: str | None = None, path: str | None = None) -> list:
    params = {k: v for k, v in {"method": method, "path_regex": path}.items() if v}
    return control.get("/_sandbox/requests", params=params).json()["results"]


def objects(control: httpx.Client, type_: str = "contacts", archived: bool = False) -> list:
    params = {"archived": "true"} if archived else {}
    return control.get(f"/_sandbox/objects/{type_}", params=params).json()["results"]


def fault(control: httpx.Client, **spec: object) -> None:
    control.post("/_sandbox/faults", json=spec).raise_for_status()


def emails(n: int, prefix: str = "u") -> list[dict[str, object]]:
    return [{"email": f"{prefix}{i}@x.io"} for i in range(n)]


# -- happy paths ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_create_one_uses_the_single_object_endpoint(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    [obj] = await hubspot.create("contacts", [{"email": "Ada@x.io", "firstname": "Ada"}])
    assert isinstance(obj, ApiObject) and obj.id.isdigit()
    assert obj.properties["email"] == "ada@x.io"
    assert obj.properties["createdate"] == obj.created_at
    assert obj.created is None
    [entry] = requests(control)
    assert (entry["method"], entry["path"]) == ("POST", "/crm/v3/objects/contacts")
    assert entry["body"] == {"properties": {"email": "Ada@x.io", "firstname": "Ada"}}


@pytest.mark.asyncio
async def test_250_rows_are_three_batch_calls_matched_in_input_order(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    control.post("/_sandbox/config", json={"shuffle_results": True}).raise_for_status()
    rows = emails(250)
    created = await hubspot.create("contacts", rows)
    assert [o.properties["email"] for o in created] == [r["email"] for r in rows]
    calls = requests(control, "POST")
    assert [c["path"] for c in calls] == ["/crm/v3/objects/contacts/batch/create"] * 3
    assert [len(c["body"]["inputs"]) for c in calls] == [100, 100, 50]
    traces = [i["objectWriteTraceId"] for c in calls for i in c["body"]["inputs"]]
    assert len(set(traces)) == 250
    assert len(objects(control)) == 250
    assert await hubspot.create("contacts", []) == []


@pytest.mark.asyncio
async def test_values_are_encoded_for_hubspot(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    row = {
        "email": "e@x.io",
        "vip": True,
        "user_id": 42,
        "firstname": None,
        "born": date(1990, 5, 17),
        "seen": datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        "tags": ["a", "b"],
    }
    [obj] = await hubspot.create("contacts", [row])
    sent = requests(control)[0]["body"]["properties"]
    assert sent == {
        "email": "e@x.io",
        "vip": "true",
        "user_id": "42",
        "born": "1990-05-17",
        "seen": "2024-05-01T08:00:00.123Z",
        "tags": "a;b",
    }
    assert obj.properties["seen"] == "2024-05-01T08:00:00.123Z"
    amounts = [Decimal("10.50"), 0.1, 2.0, 7]
    deals = await hubspot.create("deals", [{"amount": a} for a in amounts])
    assert [d.properties["amount"] for d in deals] == ["10.5", "0.1", "2", "7"]
    # Postgres' text form of a timestamptz becomes ISO-8601 UTC.
    [later] = await hubspot.update("contacts", [(obj.id, {"seen": "2024-05-01 10:00:00+02"})])
    assert later.properties["seen"] == "2024-05-01T08:00:00.000Z"


@pytest.mark.asyncio
async def test_update_clears_with_none_and_decodes_missing_as_none(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    [obj] = await hubspot.create("contacts", [{"email": "c@x.io", "city": "Rome"}])
    [updated] = await hubspot.update("contacts", [(obj.id, {"city": None, "firstname": "C"})])
    assert requests(control, "PATCH")[0]["body"] == {"properties": {"city": "", "firstname": "C"}}
    assert updated.properties.get("city") is None
    assert updated.properties["firstname"] == "C"
    fetched = await hubspot.get("contacts", obj.id, properties=["city", "firstname"])
    assert fetched is not None and fetched.properties["city"] is None


@pytest.mark.asyncio
async def test_update_many_uses_batches(hubspot: HubSpotConnector, control: httpx.Client) -> None:
    created = await hubspot.create("contacts", emails(150))
    changes = [(o.id, {"firstname": f"F{i}"}) for i, o in enumerate(created)]
    updated = await hubspot.update("contacts", changes)
    assert [o.properties["firstname"] for o in updated] == [f"F{i}" for i in range(150)]
    batches = requests(control, "POST", "batch/update$")
    assert [len(b["body"]["inputs"]) for b in batches] == [100, 50]


@pytest.mark.asyncio
async def test_upsert_reports_created_or_updated(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    [old] = await hubspot.create("contacts", [{"email": "old@x.io"}])
    rows = [{"email": "OLD@x.io", "firstname": "O"}, {"email": "new@x.io", "firstname": "N"}]
    results = await hubspot.upsert("contacts", "email", rows)
    assert [(o.id == old.id, o.created) for o in results] == [(True, False), (False, True)]
    [call] = requests(control, "POST", "batch/upsert$")
    assert call["body"]["inputs"][0]["idProperty"] == "email"
    assert call["body"]["inputs"][0]["id"] == "OLD@x.io"
    with pytest.raises(ApiError) as raised:
        await hubspot.upsert("contacts", "email", [{"firstname": "no key"}])
    assert raised.value.kind is ErrorKind.NOT_NULL and raised.value.column == "email"
    assert len(requests(control)) == 2


@pytest.mark.asyncio
async def test_archive_single_and_batched_then_get(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    created = await hubspot.create("contacts", emails(3))
    await hubspot.archive("contacts", [created[0].id])
    await hubspot.archive("contacts", [o.id for o in created[1:]])
    assert requests(control, "DELETE")[0]["path"].endswith(f"/{created[0].id}")
    assert requests(control, "POST", "batch/archive$")[0]["body"]["inputs"] == [
        {"id": created[1].id},
        {"id": created[2].id},
    ]
    assert objects(control) == []
    assert await hubspot.get("contacts", created[0].id) is None
    assert await hubspot.get("contacts", "u1@x.io", id_property="email") is None


@pytest.mark.asyncio
async def test_get_by_unique_property(hubspot: HubSpotConnector) -> None:
    [obj] = await hubspot.create("contacts", [{"email": "g@x.io", "city": "Oslo"}])
    found = await hubspot.get("contacts", "g@x.io", id_property="email", properties=["city"])
    assert found is not None and found.id == obj.id
    assert found.properties["city"] == "Oslo"


# -- error mapping --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_duplicate_maps_to_unique_violation(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    [obj] = await hubspot.create("contacts", [{"email": "dup@x.io"}])
    with pytest.raises(ApiError) as raised:
        await hubspot.create("contacts", [{"email": "dup@x.io"}])
    error = raised.value
    assert error.kind is ErrorKind.DUPLICATE and error.sqlstate == "23505"
    assert error.existing_id == obj.id and error.column == "email"
    assert error.message == f"Contact already exists. Existing ID: {obj.id}"
    assert error.vendor_request_id == requests(control)[-1]["correlation_id"]
    assert error.http_status == 409 and error.retry_safe and error.input_index == 0
    assert f"Existing object id: {obj.id}." in error.detail


@pytest.mark.parametrize(
    ("type_", "row", "kind", "column", "code"),
    [
        ("contacts", {"foo": "1"}, ErrorKind.UNKNOWN_PROPERTY, "foo", "PROPERTY_DOESNT_EXIST"),
        (
            "contacts",
            {"createdate": "2024-01-01"},
            ErrorKind.READ_ONLY_PROPERTY,
            "createdate",
            "READ_ONLY_VALUE",
        ),
        ("contacts", {"email": "nope"}, ErrorKind.INVALID_VALUE, "email", "INVALID_EMAIL"),
        ("deals", {"amount": "lots"}, ErrorKind.INVALID_VALUE, "amount", "INVALID_FLOAT"),
        ("pets", {}, ErrorKind.NOT_NULL, "name", "REQUIRED_PROPERTY"),
    ],
)
@pytest.mark.asyncio
async def test_validation_errors_map_to_sqlstates(
    hubspot: HubSpotConnector,
    type_: str,
    row: dict[str, object],
    kind: ErrorKind,
    column: str,
    code: str,
) -> None:
    with pytest.raises(ApiError) as raised:
        await hubspot.create(type_, [row])
    error = raised.value
    assert (error.kind, error.column, error.vendor_code) == (kind, column, code)
    assert error.sqlstate == SQLSTATE[kind] and error.http_status == 400
    assert error.retry_safe and error.vendor_request_id
    assert "Property values were not valid" not in error.message


@pytest.mark.asyncio
async def test_not_found_auth_and_forbidden(
    hubspot: HubSpotConnector, server: BackgroundSandbox, control: httpx.Client
) -> None:
    with pytest.raises(ApiError) as missing:
        await hubspot.update("contacts", [("999999", {"firstname": "x"})])
    assert missing.value.kind is ErrorKind.NOT_FOUND and missing.value.sqlstate == "P0002"
    wrong = HubSpotConnector(settings(server.url, token="wrong"))
    try:
        with pytest.raises(ApiError) as denied:
            await wrong.create("contacts", [{"email": "a@x.io"}])
    finally:
        await wrong.aclose()
    assert denied.value.kind is ErrorKind.AUTH and denied.value.sqlstate == "28000"
    assert denied.value.hint
    fault(
        control,
        status=403,
        body={"status": "error", "message": "missing scopes", "category": "MISSING_SCOPES"},
    )
    with pytest.raises(ApiError) as forbidden:
        await hubspot.create("contacts", [{"email": "b@x.io"}])
    assert forbidden.value.kind is ErrorKind.FORBIDDEN and forbidden.value.sqlstate == "42501"


@pytest.mark.asyncio
async def test_unencodable_value_fails_before_any_call(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    with pytest.raises(ApiError) as raised:
        await hubspot.create("contacts", [{"email": "a@x.io"}, {"email": {"nested": 1}}])
    error = raised.value
    assert (error.kind, error.column, error.input_index) == (ErrorKind.UNSUPPORTED, "email", 1)
    assert error.sqlstate == "0A000" and error.retry_safe
    assert requests(control) == []


def test_registry_and_sqlstate_table() -> None:
    assert isinstance(build_connector("hubspot", token="t"), HubSpotConnector)
    with pytest.raises(ValueError, match="unknown connector kind 'pipedrive'"):
        build_connector("pipedrive", token="t")
    assert set(SQLSTATE) == set(ErrorKind)
    assert SQLSTATE[ErrorKind.OUTCOME_UNKNOWN] == "08007"
    assert SQLSTATE[ErrorKind.UNSUPPORTED] == "0A000"
    calls = list(plan_batches(Operation.ARCHIVE, "contacts", [{"id": str(i)} for i in range(5)], 2))
    assert [(c.first_index, len(c.inputs)) for c in calls] == [(0, 2), (2, 2), (4, 1)]


# -- retries --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_ten_secondly_429_waits_at_least_the_window(
    server: BackgroundSandbox, control: httpx.Client
) -> None:
    fault(control, status=429, match={"method": "POST"})  # policyName TEN_SECONDLY_ROLLING
    connector = HubSpotConnector(settings(server.url, ten_secondly_wait_s=0.3))
    started = time.monotonic()
    try:
        [obj] = await connector.create("contacts", [{"email": "r@x.io"}])
    finally:
        await connector.aclose()
    assert time.monotonic() - started >= 0.3
    assert [r["status"] for r in requests(control)] == [429, 201]
    assert obj.properties["email"] == "r@x.io"


@pytest.mark.asyncio
async def test_rate_limit_headers_slow_us_down_before_a_429(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    [obj] = await hubspot.create("contacts", [{"email": "h@x.io"}])
    control.post(
        "/_sandbox/config", json={"rate_limit": {"max_requests": 1, "window_s": 0.3}}
    ).raise_for_status()
    await hubspot.update("contacts", [(obj.id, {"firstname": "A"})])
    started = time.monotonic()
    [updated] = await hubspot.update("contacts", [(obj.id, {"firstname": "B"})])
    assert time.monotonic() - started >= 0.25
    assert updated.properties["firstname"] == "B"
    assert [r["status"] for r in requests(control, "PATCH")] == [200, 200]


@pytest.mark.asyncio
async def test_429_create_is_retried_because_nothing_was_applied(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    fault(control, status=429, headers={"Retry-After": "0.2"})
    started = time.monotonic()
    [obj] = await hubspot.create("contacts", [{"email": "ra@x.io"}])
    assert time.monotonic() - started >= 0.2  # Retry-After honoured
    assert [r["status"] for r in requests(control)] == [429, 201]
    assert obj.properties["email"] == "ra@x.io"


@pytest.mark.asyncio
async def test_daily_429_is_not_retried(hubspot: HubSpotConnector, control: httpx.Client) -> None:
    control.post(
        "/_sandbox/config",
        json={"rate_limit": {"max_requests": 1, "window_s": 3600, "policy": "DAILY"}},
    ).raise_for_status()
    await hubspot.create("contacts", [{"email": "d1@x.io"}])
    with pytest.raises(ApiError) as raised:
        await hubspot.create("contacts", [{"email": "d2@x.io"}])
    assert raised.value.kind is ErrorKind.RATE_LIMITED and raised.value.sqlstate == "53400"
    assert raised.value.retry_safe
    assert len(requests(control)) == 2


@pytest.mark.asyncio
async def test_wait_longer_than_the_cap_gives_up_at_once(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    fault(control, status=429, headers={"Retry-After": "3600"}, times=5)
    with pytest.raises(ApiError) as raised:
        await hubspot.create("contacts", [{"email": "cap@x.io"}])
    assert raised.value.kind is ErrorKind.RATE_LIMITED
    assert len(requests(control)) == 1


@pytest.mark.asyncio
async def test_423_locked_waits_then_retries(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    [obj] = await hubspot.create("contacts", [{"email": "l@x.io"}])
    fault(control, status=423, match={"method": "PATCH"})
    [updated] = await hubspot.update("contacts", [(obj.id, {"firstname": "L"})])
    assert updated.properties["firstname"] == "L"
    assert [r["status"] for r in requests(control, "PATCH")] == [423, 200]


@pytest.mark.asyncio
async def test_5xx_is_retried_for_idempotent_calls(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    created = await hubspot.create("contacts", emails(2))
    fault(control, status=502, match={"path_regex": "batch/update"}, times=2)
    updated = await hubspot.update("contacts", [(o.id, {"firstname": "X"}) for o in created])
    assert [o.properties["firstname"] for o in updated] == ["X", "X"]
    assert [r["status"] for r in requests(control, "POST", "batch/update")] == [502, 502, 200]
    fault(control, status=503, match={"method": "DELETE"}, times=10)
    with pytest.raises(ApiError) as raised:
        await hubspot.archive("contacts", [created[0].id])
    error = raised.value
    assert error.kind is ErrorKind.UNAVAILABLE and error.sqlstate == "57P03"
    assert not error.retry_safe  # a 5xx may have been applied
    assert len(requests(control, "DELETE")) == 3  # max_attempts


@pytest.mark.asyncio
async def test_create_5xx_is_outcome_unknown_and_not_retried(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    fault(control, status=500, apply=True, match={"method": "POST"})
    with pytest.raises(ApiError) as raised:
        await hubspot.create("contacts", [{"email": "u@x.io"}])
    error = raised.value
    assert error.kind is ErrorKind.OUTCOME_UNKNOWN and error.sqlstate == "08007"
    assert not error.retry_safe and error.http_status == 500
    assert len(requests(control, "POST")) == 1
    assert len(objects(control)) == 1  # it was applied: resolving that is the journal's job


@pytest.mark.asyncio
async def test_create_timeout_is_outcome_unknown_and_not_retried(
    server: BackgroundSandbox, control: httpx.Client
) -> None:
    fault(control, apply=True, delay_ms=1500, match={"method": "POST"})
    connector = HubSpotConnector(settings(server.url, read_timeout_s=0.5))
    try:
        with pytest.raises(ApiError) as raised:
            await connector.create("contacts", [{"email": "t@x.io"}])
    finally:
        await connector.aclose()
    assert raised.value.kind is ErrorKind.OUTCOME_UNKNOWN and not raised.value.retry_safe
    assert len(requests(control, "POST")) == 1


@pytest.mark.asyncio
async def test_upsert_retried_after_a_timeout_reports_created_as_unknown(
    server: BackgroundSandbox, control: httpx.Client
) -> None:
    fault(control, apply=True, delay_ms=1500, match={"path_regex": "batch/upsert"})
    connector = HubSpotConnector(settings(server.url, read_timeout_s=0.5))
    try:
        rows = [{"email": "amb@x.io"}, {"email": "amb2@x.io"}]
        results = await connector.upsert("contacts", "email", rows)
    finally:
        await connector.aclose()
    # The first attempt created both; the retry saw them existing and cannot tell.
    assert [o.created for o in results] == [None, None]
    assert len(requests(control, "POST", "batch/upsert")) == 2
    assert len(objects(control)) == 2


@pytest.mark.asyncio
async def test_unreachable_vendor_is_unavailable_and_retry_safe() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = HubSpotConnector(settings(f"http://127.0.0.1:{port}"))
    try:
        with pytest.raises(ApiError) as raised:
            await connector.create("contacts", [{"email": "x@x.io"}])
    finally:
        await connector.aclose()
    assert raised.value.kind is ErrorKind.UNAVAILABLE and raised.value.retry_safe


# -- partial failures and compensation -------------------------------------------------


@pytest.mark.asyncio
async def test_partial_batch_failure_archives_what_the_call_created(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    [taken] = await hubspot.create("contacts", [{"email": "taken@x.io"}])
    rows = emails(150)
    rows[120] = {"email": "taken@x.io"}
    hooks = Recorder()
    with pytest.raises(ApiError) as raised:
        await hubspot.create("contacts", rows, hooks=hooks)
    error = raised.value
    assert error.kind is ErrorKind.DUPLICATE and error.existing_id == taken.id
    assert error.input_index == 120 and "Failed row: 121." in error.detail
    assert error.applied == () and error.retry_safe
    assert [o["id"] for o in objects(control)] == [taken.id]  # no orphans
    assert len(objects(control, archived=True)) == 149
    compensations = [c for kind, c, _ in hooks.events if kind == "before" and c.compensation]
    assert [len(c.inputs) for c in compensations] == [100, 49]
    assert all(c.operation is Operation.ARCHIVE for c in compensations)


@pytest.mark.asyncio
async def test_whole_batch_rejection_names_no_row_but_still_compensates(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    control.post("/_sandbox/config", json={"batch_errors": "all_or_nothing"}).raise_for_status()
    rows = emails(150)
    rows[120] = {"email": "u1@x.io"}  # duplicates row 1, already created in batch one
    with pytest.raises(ApiError) as raised:
        await hubspot.create("contacts", rows)
    assert raised.value.kind is ErrorKind.DUPLICATE and raised.value.input_index is None
    assert objects(control) == []
    assert len(objects(control, archived=True)) == 100


@pytest.mark.asyncio
async def test_failed_compensation_reports_what_is_left_applied(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    fault(control, status=403, match={"path_regex": "batch/archive"})
    rows = [*emails(3), {"email": "bad"}]
    with pytest.raises(ApiError) as raised:
        await hubspot.create("contacts", rows)
    error = raised.value
    assert error.kind is ErrorKind.INVALID_VALUE and error.input_index == 3
    assert sorted(error.applied) == sorted(o["id"] for o in objects(control))
    assert len(error.applied) == 3 and not error.retry_safe


@pytest.mark.asyncio
async def test_partial_update_failure_lists_applied_ids_for_the_caller(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    created = await hubspot.create("contacts", emails(2))
    changes = [
        (created[0].id, {"firstname": "A"}),
        ("888888", {"firstname": "?"}),
        (created[1].id, {"firstname": "B"}),
    ]
    with pytest.raises(ApiError) as raised:
        await hubspot.update("contacts", changes)
    error = raised.value
    assert error.kind is ErrorKind.NOT_FOUND and error.input_index == 1
    assert sorted(error.applied) == sorted(o.id for o in created)
    assert not error.retry_safe


@pytest.mark.asyncio
async def test_upsert_failure_archives_only_what_it_created(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    [old] = await hubspot.create("contacts", [{"email": "old@x.io"}])
    rows = [
        {"email": "old@x.io", "firstname": "O"},
        {"email": "n@x.io"},
        {"email": "m@x.io", "nope": "1"},
    ]
    with pytest.raises(ApiError) as raised:
        await hubspot.upsert("contacts", "email", rows)
    assert raised.value.kind is ErrorKind.UNKNOWN_PROPERTY and raised.value.input_index == 2
    assert raised.value.applied == (old.id,)
    assert [o["properties"]["email"] for o in objects(control)] == ["old@x.io"]


# -- hooks and pacing -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_hooks_announce_each_call_before_it_is_sent(
    hubspot: HubSpotConnector, control: httpx.Client
) -> None:
    seen_by_vendor: list[int] = []

    class Journal(Recorder):
        async def before_send(self, call: VendorCall) -> None:
            seen_by_vendor.append(len(requests(control)))
            await super().before_send(call)

    journal = Journal()
    created = await hubspot.create("contacts", emails(120), hooks=journal)
    assert seen_by_vendor == [0, 1]
    kinds = [(kind, c.first_index, len(c.inputs)) for kind, c, _ in journal.events]
    assert kinds == [("before", 0, 100), ("after", 0, 100), ("before", 100, 20), ("after", 100, 20)]
    first_call, outcome = journal.events[1][1], journal.events[1][2]
    assert first_call.operation is Operation.CREATE and not first_call.compensation
    assert outcome is not None and outcome.error is None
    assert list(outcome.results) == created[:100]
    assert first_call.inputs[0] == {"properties": {"email": "u0@x.io"}}


@pytest.mark.asyncio
async def test_limiter_paces_requests_below_the_vendor_limit(
    server: BackgroundSandbox, control: httpx.Client
) -> None:
    control.post(
        "/_sandbox/config", json={"rate_limit": {"max_requests": 4, "window_s": 0.4}}
    ).raise_for_status()
    connector = HubSpotConnector(
        settings(server.url, rate_limit_requests=4, rate_limit_interval_s=0.4, max_attempts=1)
    )
    started = time.monotonic()
    try:
        await asyncio.gather(*(connector.get("contacts", str(i)) for i in range(12)))
    finally:
        await connector.aclose()
    assert time.monotonic() - started >= 0.8  # three windows' worth
    assert {r["status"] for r in requests(control)} == {404}  # never a 429


@pytest.mark.asyncio
async def test_limiter_believes_the_vendors_remaining_count() -> None:
    limiter = RollingWindowLimiter(100, 0.3)
    async with limiter.slot():
        pass
    limiter.observe(limit=None, remaining=0, interval_s=None)
    started = time.monotonic()
    async with limiter.slot():
        assert time.monotonic() - started >= 0.25


def test_api_error_detail_and_hint() -> None:
    error = ApiError(
        ErrorKind.OUTCOME_UNKNOWN, "no answer", http_status=504, vendor_request_id="cid-1"
    ).for_row(4, applied=["7"])
    assert error.detail == "Failed row: 5. Left applied: 7. HTTP 504. Vendor request id: cid-1."
    assert error.hint and "journal" in error.hint
    assert not error.retry_safe and str(error) == "no answer"
    assert ApiError(ErrorKind.DUPLICATE, "x").hint is None
