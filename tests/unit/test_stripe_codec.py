"""proxy.connectors.stripe without a network: row values to Stripe's form parameters
and back (codec), Stripe's error bodies (errors), how the four synced tables map to
Stripe's objects (naming), the client's retry rules, and the connector's update and
lost-create lookup against an in-process HTTP transport (httpx.MockTransport)."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from tenacity import AsyncRetrying

from proxy.connectors import retry
from proxy.connectors.base import (
    ApiError,
    CallOutcome,
    ErrorKind,
    Operation,
    VendorCall,
)
from proxy.connectors.mapping import MappingError, TableShape
from proxy.connectors.retry import Retryable
from proxy.connectors.stripe import StripeConnector, StripeSettings
from proxy.connectors.stripe.client import StripeClient
from proxy.connectors.stripe.codec import decode_object, encode_fields, form, param_value
from proxy.connectors.stripe.errors import parse_error
from proxy.connectors.stripe.naming import map_table
from proxy.connectors.stripe.objects import OBJECTS

# -- codec: values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (None, ""),  # Stripe's "unset"
        (True, "true"),
        (False, "false"),  # bool before int: not "0"
        (0, "0"),
        (-250, "-250"),
        (2**70, "1180591620717411303424"),
        (0.1, "0.1"),  # no float noise
        (12.5, "12.5"),
        (1e20, "100000000000000000000"),
        (1e-7, "0.0000001"),
        (Decimal("12.5"), "12.5"),
        (Decimal("33.333333333333"), "33.333333333333"),  # every digit kept
        (Decimal("1E+3"), "1000"),  # never exponent notation
        ("hello", "hello"),
        ("", ""),
        (date(2024, 2, 29), "2024-02-29"),
        (["en", "fr"], ["en", "fr"]),
        (("a", 1, True), ["a", "1", "true"]),
        ({"plan": "pro", "seats": 5, "trial": None}, {"plan": "pro", "seats": "5", "trial": ""}),
        ({"a": {"b": [1, {"c": False}]}}, {"a": {"b": ["1", {"c": "false"}]}}),
    ],
)
def test_param_value(value: object, encoded: object) -> None:
    assert param_value("description", value) == encoded


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1_800_000_000, "1800000000"),
        ("2027-01-15T08:00:00+00:00", "1800000000"),
        ("2027-01-15T08:00:00Z", "1800000000"),
        ("2027-01-15T09:00:00+01:00", "1800000000"),
        ("2027-01-15T08:00:00", "1800000000"),  # no zone: UTC
        ("2027-01-15 08:00:00.9+00", "1800000000"),  # PostgreSQL's text form, truncated
    ],
)
def test_unix_time_fields_are_sent_as_seconds(value: object, seconds: str) -> None:
    assert datetime.fromtimestamp(1_800_000_000, UTC) == datetime(2027, 1, 15, 8, tzinfo=UTC)
    assert param_value("redeem_by", value) == seconds


def test_unix_time_field_unset_stays_empty() -> None:
    assert param_value("redeem_by", None) == ""
    assert param_value("redeem_by", "") == ""


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN"), object(), b"x"])
def test_unencodable_value_is_refused_naming_the_column(value: object) -> None:
    with pytest.raises(TypeError):
        param_value("balance", value)
    with pytest.raises(ApiError) as info:
        encode_fields({"email": "a@b.co", "balance": value}, clearing=False)
    assert (info.value.kind, info.value.column) == (ErrorKind.UNSUPPORTED, "balance")
    assert info.value.sqlstate == "0A000"


def test_encode_fields_leaves_none_out_of_a_create_and_unsets_it_in_an_update() -> None:
    row = {"email": "a@b.co", "name": None, "metadata": {"k": "v"}}
    assert encode_fields(row, clearing=False) == {"email": "a@b.co", "metadata": {"k": "v"}}
    assert encode_fields(row, clearing=True) == {
        "email": "a@b.co",
        "name": "",
        "metadata": {"k": "v"},
    }


# -- codec: form ------------------------------------------------------------------------


def test_form_nests_objects_and_lists_with_bracket_keys() -> None:
    params = encode_fields(
        {
            "email": "a@b.co",
            "metadata": {"plan": "pro", "legacy": None},
            "address": {"line1": "1 Main St", "city": "Paris"},
            "preferred_locales": ["fr", "en"],
            "marketing_features": [{"name": "Fast"}, {"name": "Cheap"}],
            "recurring": {"interval": "month", "interval_count": 3},
            "active": False,
            "percent_off": Decimal("12.5"),
        },
        clearing=True,
    )
    assert form(params) == [
        ("email", "a@b.co"),
        ("metadata[plan]", "pro"),
        ("metadata[legacy]", ""),
        ("address[line1]", "1 Main St"),
        ("address[city]", "Paris"),
        ("preferred_locales[0]", "fr"),
        ("preferred_locales[1]", "en"),
        ("marketing_features[0][name]", "Fast"),
        ("marketing_features[1][name]", "Cheap"),
        ("recurring[interval]", "month"),
        ("recurring[interval_count]", "3"),
        ("active", "false"),
        ("percent_off", "12.5"),
    ]


def test_form_sends_an_empty_object_or_list_as_unset() -> None:
    assert form({"metadata": {}, "preferred_locales": []}) == [
        ("metadata", ""),
        ("preferred_locales", ""),
    ]


def test_form_round_trips_through_stripes_bracket_parser() -> None:
    """The sandbox decodes Stripe's form syntax as Stripe does: what ``form`` sends is
    read back as the nested value that was meant (list indexes stay keys at this layer;
    the parameter's schema makes them a list)."""
    from proxy.sandbox.stripe.formdata import decode

    params = encode_fields(
        {
            "metadata": {"a b": "x&y=z", "ü": "é"},
            "preferred_locales": ["fr"],
            "address": {"city": "Saint-Étienne"},
        },
        clearing=False,
    )
    assert decode(urlencode(form(params))) == {
        "metadata": {"a b": "x&y=z", "ü": "é"},
        "preferred_locales": {"0": "fr"},
        "address": {"city": "Saint-Étienne"},
    }


# -- codec: decode ------------------------------------------------------------------------


def test_decode_turns_unix_times_into_instants_and_keeps_json() -> None:
    raw = {
        "id": "cus_1",
        "created": 1_800_000_000,
        "redeem_by": None,
        "livemode": False,
        "metadata": {"k": "v"},
        "address": {"city": "Paris", "line1": None},
        "preferred_locales": ["fr"],
        "balance": 0,
    }
    decoded = decode_object(raw)
    assert decoded["created"] == "2027-01-15T08:00:00+00:00"
    assert decoded["redeem_by"] is None
    assert {k: v for k, v in decoded.items() if k != "created"} == {
        k: v for k, v in raw.items() if k != "created"
    }
    # An instant decoded from Stripe encodes back to the same unix time.
    assert param_value("created", decoded["created"]) == "1800000000"


# -- errors ------------------------------------------------------------------------------


def _body(**error: object) -> dict[str, object]:
    return {"error": error}


@pytest.mark.parametrize(
    ("status", "body", "kind", "column"),
    [
        (
            400,
            _body(type="invalid_request_error", code="email_invalid", param="email"),
            ErrorKind.INVALID_VALUE,
            "email",
        ),
        (
            400,
            _body(type="invalid_request_error", code="parameter_unknown", param="metadata[x]"),
            ErrorKind.UNKNOWN_PROPERTY,
            "metadata",
        ),
        (
            400,
            _body(type="invalid_request_error", code="parameter_missing", param="currency"),
            ErrorKind.NOT_NULL,
            "currency",
        ),
        (
            400,
            _body(type="invalid_request_error", code="resource_already_exists", param="id"),
            ErrorKind.DUPLICATE,
            "id",
        ),
        (
            404,
            _body(type="invalid_request_error", code="resource_missing"),
            ErrorKind.NOT_FOUND,
            None,
        ),
        (429, _body(type="invalid_request_error", code="rate_limit"), ErrorKind.RATE_LIMITED, None),
        (409, _body(type="invalid_request_error", code="lock_timeout"), ErrorKind.LOCKED, None),
        (400, _body(type="idempotency_error"), ErrorKind.IDEMPOTENCY, None),
        (402, _body(type="card_error", code="card_declined"), ErrorKind.INVALID_VALUE, None),
        (401, _body(type="invalid_request_error"), ErrorKind.AUTH, None),
        (403, _body(type="invalid_request_error"), ErrorKind.FORBIDDEN, None),
        (500, _body(type="api_error"), ErrorKind.UNAVAILABLE, None),
        (503, {}, ErrorKind.UNAVAILABLE, None),
        (400, {"message": "not Stripe's envelope"}, ErrorKind.INVALID_VALUE, None),
        (400, {"error": "a string"}, ErrorKind.INVALID_VALUE, None),
    ],
)
def test_parse_error(
    status: int, body: dict[str, object], kind: ErrorKind, column: str | None
) -> None:
    error = parse_error(status, body, correlation_id="req_1")
    assert (error.kind, error.column, error.http_status) == (kind, column, status)
    assert error.vendor_request_id == "req_1"
    assert "Vendor request id: req_1." in error.detail


def test_parse_error_keeps_stripes_message_and_code() -> None:
    error = parse_error(
        400,
        _body(type="invalid_request_error", code="email_invalid", param="email", message="Bad."),
        correlation_id=None,
    )
    assert (error.message, error.vendor_code, error.sqlstate) == ("Bad.", "email_invalid", "23514")
    bare = parse_error(502, {}, correlation_id=None)
    assert bare.message == "Stripe answered HTTP 502" and bare.vendor_code is None


# -- naming: the four synced tables -------------------------------------------------------

#: The columns of proxy/demo/schema.sql's stripe tables (id and _sync columns left out,
#: as the proxy does).
SCHEMA = {
    "customer": (
        "email name phone description balance tax_exempt preferred_locales address metadata "
        "currency delinquent livemode created"
    ),
    "product": "name description active unit_label url metadata livemode created updated",
    "price": (
        "product currency unit_amount nickname active lookup_key recurring tax_behavior type "
        "metadata livemode created"
    ),
    "coupon": (
        "name percent_off amount_off currency duration duration_in_months max_redemptions "
        "redeem_by metadata times_redeemed valid livemode created"
    ),
}


def shape(table: str, columns: str | None = None, **options: Any) -> TableShape:
    names = (columns or SCHEMA[table]).split()
    return TableShape("stripe", table, tuple((c, "text") for c in names), **options)


@pytest.mark.parametrize(
    ("table", "resource", "read_only", "immutable", "deletable"),
    [
        ("customer", "customers", "currency delinquent livemode created", "", True),
        ("product", "products", "livemode created updated", "", True),
        (
            "price",
            "prices",
            "type livemode created",
            "product currency unit_amount recurring",
            False,
        ),
        (
            "coupon",
            "coupons",
            "times_redeemed valid livemode created",
            "percent_off amount_off currency duration duration_in_months max_redemptions redeem_by",
            True,
        ),
    ],
)
def test_the_four_tables_map_to_stripes_objects(
    table: str, resource: str, read_only: str, immutable: str, deletable: bool
) -> None:
    mapping = map_table(shape(table))
    assert mapping.object_type == resource
    assert mapping.read_only == frozenset(read_only.split())
    assert set(mapping.properties) == set(SCHEMA[table].split()) - set(read_only.split())
    assert all(column == field for column, field in mapping.properties.items())
    caps = mapping.capabilities
    assert caps.immutable == frozenset(immutable.split())
    assert caps.delete is deletable and caps.create
    assert mapping.upsert_keys == frozenset() and mapping.ends is None
    if deletable:
        assert caps.delete_hint is None
    else:
        assert "active = false" in (caps.delete_hint or "")
    if immutable:
        assert "create a new one" in (caps.immutable_hint or "")


def test_every_updatable_field_is_also_known() -> None:
    for spec in OBJECTS.values():
        assert spec.updatable <= spec.fields
        assert not spec.read_only & (spec.creatable | spec.updatable)
        assert "metadata" in spec.merged and "metadata" in spec.updatable


def test_a_column_that_is_not_a_stripe_field_is_a_mapping_error() -> None:
    with pytest.raises(MappingError) as info:
        map_table(shape("customer", "email favourite_colour"))
    message = str(info.value)
    assert "stripe.customer" in message
    assert "favourite_colour is not a field of Stripe's customer object" in message
    assert "local_columns" in message


def test_renames_object_override_and_configured_read_only() -> None:
    mapping = map_table(
        TableShape(
            "billing",
            "clients",
            (("mail", "text"), ("label", "text"), ("created", "timestamptz")),
            object="customers",  # by resource name too
            renames={"mail": "email", "label": "name"},
            read_only=("label",),
        )
    )
    assert mapping.object_type == "customers"
    assert mapping.properties == {"mail": "email"}
    assert mapping.read_only == frozenset({"label", "created"})
    assert mapping.read_only_properties == {"label": "name", "created": "created"}


def test_unknown_object_and_upsert_keys_are_mapping_errors() -> None:
    with pytest.raises(MappingError, match="customer, price, product"):
        map_table(shape("invoice", "amount_due"))
    with pytest.raises(MappingError, match="no upsert"):
        map_table(shape("customer", "email", upsert_keys=("email",)))


# -- the client's retry rules -------------------------------------------------------------


class Vendor:
    """Scripted answers (or a function of the request), and the requests seen."""

    def __init__(self) -> None:
        self.answers: list[httpx.Response | Callable[[httpx.Request], httpx.Response]] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        return answer if isinstance(answer, httpx.Response) else answer(request)

    def form(self, index: int) -> dict[str, str]:
        return dict(parse_qsl(self.requests[index].content.decode(), keep_blank_values=True))


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    async def sleep(seconds: float) -> None:
        return None

    monkeypatch.setattr(retry, "AsyncRetrying", functools.partial(AsyncRetrying, sleep=sleep))


@pytest.fixture
def vendor() -> Vendor:
    return Vendor()


SETTINGS = StripeSettings.model_validate(
    {"token": "sk_test_unit", "base_url": "https://stripe.test", "max_attempts": 3}
)


def _mock_http(vendor: Vendor) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=SETTINGS.base_url,
        headers={"Authorization": "Bearer sk_test_unit", "Stripe-Version": "2024-06-20"},
        transport=httpx.MockTransport(vendor),
    )


@pytest.fixture
async def client(vendor: Vendor) -> AsyncIterator[StripeClient]:
    stripe = StripeClient(SETTINGS)
    await stripe.aclose()
    stripe._http = _mock_http(vendor)
    yield stripe
    await stripe.aclose()


@pytest.fixture
async def connector(vendor: Vendor) -> AsyncIterator[StripeConnector]:
    stripe = StripeConnector(SETTINGS)
    await stripe.aclose()
    stripe._client._http = _mock_http(vendor)
    yield stripe
    await stripe.aclose()


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def api_error(status: int = 500) -> httpx.Response:
    return answer(status, _body(type="api_error", message="boom"), stripe_should_retry="true")


async def post(client: StripeClient) -> Any:
    return await client.request(
        "POST",
        "/v1/customers",
        object_type="customers",
        idempotent=True,
        data={"email": "a@b.co"},
        headers={"Idempotency-Key": "call:0"},
    )


async def test_auth_version_and_idempotency_key_on_every_attempt(
    client: StripeClient, vendor: Vendor
) -> None:
    vendor.answers = [api_error(), answer(200, {"id": "cus_1"}, request_id="req_2")]
    reply = await post(client)
    assert (reply.body, reply.correlation_id, reply.ambiguous_retry) == (
        {"id": "cus_1"},
        "req_2",
        True,
    )
    for request in vendor.requests:
        assert request.headers["authorization"] == "Bearer sk_test_unit"
        assert request.headers["stripe-version"] == "2024-06-20"
        assert request.headers["idempotency-key"] == "call:0"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert len(vendor.requests) == 2


async def test_5xx_that_persists_is_not_retry_safe(client: StripeClient, vendor: Vendor) -> None:
    """Stripe marks its 500s "Stripe-Should-Retry: true", but the request may have been
    applied: when the retries run out nothing may claim that nothing was applied."""
    vendor.answers = [api_error(), api_error(), api_error()]
    with pytest.raises(ApiError) as info:
        await post(client)
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert info.value.retry_safe is False
    assert len(vendor.requests) == 3


@pytest.mark.parametrize(
    ("response", "kind", "attempts"),
    [
        (
            answer(
                429,
                _body(type="invalid_request_error", code="rate_limit"),
                stripe_should_retry="true",
            ),
            ErrorKind.RATE_LIMITED,
            3,
        ),
        (
            answer(
                409,
                _body(type="invalid_request_error", code="lock_timeout"),
                stripe_should_retry="true",
            ),
            ErrorKind.LOCKED,
            3,
        ),
        (
            answer(
                400, _body(type="invalid_request_error", param="email"), stripe_should_retry="false"
            ),
            ErrorKind.INVALID_VALUE,
            1,
        ),
        (
            answer(401, _body(type="invalid_request_error", message="Invalid API Key")),
            ErrorKind.AUTH,
            1,
        ),
        (
            answer(429, _body(type="invalid_request_error", code="rate_limit")),
            ErrorKind.RATE_LIMITED,
            3,
        ),
    ],
    ids=["429", "lock-timeout", "400", "401", "429-no-header"],
)
async def test_refusals_that_applied_nothing_stay_retry_safe(
    client: StripeClient, vendor: Vendor, response: httpx.Response, kind: ErrorKind, attempts: int
) -> None:
    vendor.answers = [response] * attempts
    with pytest.raises(ApiError) as info:
        await post(client)
    assert info.value.kind is kind
    assert info.value.retry_safe is True
    assert len(vendor.requests) == attempts


def test_classify_5xx_with_should_retry_is_retried_but_maybe_applied() -> None:
    stripe = StripeClient(SETTINGS)
    response = api_error(503)
    error = parse_error(503, json.loads(response.content), correlation_id=None)
    verdict = stripe.classify(response, {}, error, idempotent=True)
    assert isinstance(verdict, Retryable)
    assert verdict.error.retry_safe is False


# -- the connector: updates and lost creates ----------------------------------------------


class Hooks:
    """Records the calls as the journal would see them."""

    def __init__(self) -> None:
        self.calls: list[VendorCall] = []

    async def before_send(self, call: VendorCall) -> None:
        self.calls.append(call)

    async def after_send(self, call: VendorCall, outcome: CallOutcome) -> None:
        return None


CUSTOMER = {
    "id": "cus_1",
    "object": "customer",
    "created": 1_800_000_000,
    "email": "a@b.co",
    "livemode": False,
    "metadata": {"plan": "pro", "legacy": "yes"},
    "address": None,
}


async def test_update_unsets_removed_metadata_keys_on_the_wire_only(
    connector: StripeConnector, vendor: Vendor
) -> None:
    updated = {**CUSTOMER, "metadata": {"plan": "team"}, "name": "Ada"}
    vendor.answers = [answer(200, CUSTOMER), answer(200, updated)]
    hooks = Hooks()
    [obj] = await connector.update(
        "customers", [("cus_1", {"metadata": {"plan": "team"}, "name": "Ada"})], hooks=hooks
    )
    get, update = vendor.requests
    assert (get.method, get.url.path) == ("GET", "/v1/customers/cus_1")
    assert (update.method, update.url.path) == ("POST", "/v1/customers/cus_1")
    assert vendor.form(1) == {"metadata[legacy]": "", "metadata[plan]": "team", "name": "Ada"}
    # The journal records the value the field is to hold (what an undo compares with).
    [call] = hooks.calls
    assert call.inputs[0]["properties"] == {"metadata": {"plan": "team"}, "name": "Ada"}
    assert obj.properties["metadata"] == {"plan": "team"}
    assert obj.created_at == "2027-01-15T08:00:00+00:00"


async def test_update_without_metadata_does_not_read_first(
    connector: StripeConnector, vendor: Vendor
) -> None:
    vendor.answers = [answer(200, {**CUSTOMER, "name": None})]
    await connector.update("customers", [("cus_1", {"name": None})])
    [request] = vendor.requests
    assert request.method == "POST" and vendor.form(0) == {"name": ""}


async def test_archive_deletes_a_customer_and_archives_a_price(
    connector: StripeConnector, vendor: Vendor
) -> None:
    vendor.answers = [
        answer(200, {"id": "cus_1", "deleted": True}),
        answer(200, {"id": "price_1", "active": False}),
        answer(404, _body(type="invalid_request_error", code="resource_missing")),
    ]
    await connector.archive("customers", ["cus_1"])
    await connector.archive("prices", ["price_1"])
    await connector.archive("customers", ["cus_gone"])  # already gone: done
    delete, archive, again = vendor.requests
    assert (delete.method, delete.url.path) == ("DELETE", "/v1/customers/cus_1")
    assert (archive.method, archive.url.path) == ("POST", "/v1/prices/price_1")
    assert vendor.form(1) == {"active": "false"}
    assert delete.headers["idempotency-key"] != again.headers["idempotency-key"]


def _listing(*objects: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    """Stripe's list endpoint, honouring the ``created[gte]`` filter."""

    def respond(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["created[gte]"])
        data = [o for o in objects if int(o["created"]) >= start]
        return answer(200, {"object": "list", "data": data, "has_more": False})

    return respond


async def _unknown(call: VendorCall) -> str:
    return "unknown"


async def test_find_created_asks_stripe_by_replaying_under_the_same_key(
    connector: StripeConnector, vendor: Vendor
) -> None:
    """Within Stripe's 24 h, the journaled request is sent again under its key: Stripe
    replays the first attempt's answer (a 4xx: nothing was made)."""
    ours = {**CUSTOMER, "id": "cus_ours", "created": int(datetime.now(UTC).timestamp())}
    vendor.answers = [httpx.Response(200, json=ours)]
    sent = encode_fields({"email": "a@b.co", "metadata": {"plan": "pro"}}, clearing=False)
    call = VendorCall(Operation.CREATE, "customers", ({"properties": sent},))
    [found] = await connector.find_created(call, datetime.now(UTC) - timedelta(minutes=1))
    assert found is not None and found.id == "cus_ours"
    [request] = vendor.requests
    assert request.headers["Idempotency-Key"] == call.call_id
    assert request.content == b"email=a%40b.co&metadata%5Bplan%5D=pro"
    refused = {"error": {"type": "invalid_request_error", "message": "Invalid email"}}
    vendor.answers = [httpx.Response(400, json=refused)]
    assert await connector.find_created(call, datetime.now(UTC)) == [None]


async def test_find_created_matches_nested_fields_stripe_completed(
    connector: StripeConnector, vendor: Vendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the replay window (or when replay cannot tell), by listing: the create sent
    part of an address; Stripe holds every key of it (null)."""
    monkeypatch.setattr(connector, "_replayed", _unknown)
    now = int(datetime.now(UTC).timestamp())
    ours = {
        **CUSTOMER,
        "id": "cus_ours",
        "created": now,
        "metadata": {"plan": "pro"},
        "address": {"line1": None, "city": "Paris", "country": "FR", "state": None},
        "preferred_locales": ["fr"],
        "balance": 100,
    }
    other = {**ours, "id": "cus_other", "address": {"city": "Lyon", "country": "FR"}}
    vendor.answers = [_listing(other, ours)]
    sent = encode_fields(
        {
            "email": "a@b.co",
            "metadata": {"plan": "pro"},
            "address": {"city": "Paris", "country": "FR"},
            "preferred_locales": ["fr"],
            "balance": 100,
        },
        clearing=False,
    )
    call = VendorCall(Operation.CREATE, "customers", ({"properties": sent},))
    since = datetime.now(UTC) - timedelta(seconds=5)
    [found] = await connector.find_created(call, since)
    assert found is not None and found.id == "cus_ours"
    assert found.properties["address"] == ours["address"]  # the object as Stripe holds it


async def test_find_created_never_claims_an_object_that_differs_or_is_old(
    connector: StripeConnector, vendor: Vendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connector, "_replayed", _unknown)
    old = {**CUSTOMER, "id": "cus_old", "created": 1_000_000_000}
    differs = {
        **CUSTOMER,
        "id": "cus_new",
        "created": int(datetime.now(UTC).timestamp()),
        "metadata": {"plan": "free"},
    }
    vendor.answers = [_listing(differs, old)]
    sent = encode_fields({"email": "a@b.co", "metadata": {"plan": "pro"}}, clearing=False)
    call = VendorCall(Operation.CREATE, "customers", ({"properties": sent},))
    assert await connector.find_created(call, datetime.now(UTC)) == [None]
    with pytest.raises(ValueError, match="create nothing"):
        await connector.find_created(
            VendorCall(Operation.UPDATE, "customers", ({"id": "cus_1"},)), datetime.now(UTC)
        )


def test_timezone_helpers_are_consistent() -> None:
    """Offsets other than UTC name the same instant."""
    moment = datetime(2027, 1, 15, 9, tzinfo=timezone(timedelta(hours=1)))
    assert param_value("redeem_by", moment.isoformat()) == "1800000000"
