"""The Stripe sandbox over real HTTP: auth, form encoding, every object's lifecycle,
Stripe's errors, idempotency, rate limits, faults and the control API."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterator

import httpx
import pytest

from proxy.sandbox.server import BackgroundSandbox
from proxy.sandbox.stripe import StripeSandboxConfig, build_app

KEY = "sk_test_sandbox"
REQUEST_ID = re.compile(r"^req_[0-9A-Za-z]{14}$")


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundSandbox]:
    with BackgroundSandbox(app=build_app(StripeSandboxConfig()), name="stripe-sandbox") as sb:
        yield sb


@pytest.fixture(scope="module")
def client(server: BackgroundSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


@pytest.fixture
def api(client: httpx.Client) -> httpx.Client:
    """An authorised client of a freshly reset sandbox."""
    client.post("/_sandbox/reset").raise_for_status()
    return client


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def customer(api: httpx.Client, **params: str) -> dict:
    return ok(api.post("/v1/customers", data=params))


def product(api: httpx.Client, name: str = "Pro plan", **params: str) -> dict:
    return ok(api.post("/v1/products", data={"name": name, **params}))


def price(api: httpx.Client, product_id: str, **params: str) -> dict:
    data = {"currency": "usd", "unit_amount": "1000", "product": product_id, **params}
    return ok(api.post("/v1/prices", data=data))


def objects(api: httpx.Client, type_: str, deleted: bool = False) -> list[dict]:
    params = {"deleted": "true"} if deleted else {}
    return ok(api.get(f"/_sandbox/objects/{type_}", params=params))["results"]


def log(api: httpx.Client, **filters: str) -> list[dict]:
    return ok(api.get("/_sandbox/requests", params=filters))["results"]


# -- auth and headers ------------------------------------------------------------------


def test_missing_and_bad_keys_are_refused(server: BackgroundSandbox) -> None:
    missing = httpx.get(f"{server.url}/v1/customers")
    err = error(missing, 401)
    assert err["type"] == "invalid_request_error"
    assert err["message"].startswith("You did not provide an API key.")
    bad = httpx.get(
        f"{server.url}/v1/customers", headers={"Authorization": "Bearer sk_test_wrongabcd"}
    )
    assert error(bad, 401)["message"] == "Invalid API Key provided: sk_test_*****abcd"
    assert REQUEST_ID.match(bad.headers["Request-Id"])


def test_basic_auth_with_key_as_user_name(server: BackgroundSandbox) -> None:
    token = base64.b64encode(f"{KEY}:".encode()).decode()
    response = httpx.get(f"{server.url}/v1/customers", headers={"Authorization": f"Basic {token}"})
    assert ok(response)["object"] == "list"
    assert ok(httpx.get(f"{server.url}/v1/customers", auth=(KEY, "")))["object"] == "list"


def test_request_id_and_version_headers(api: httpx.Client) -> None:
    default = api.get("/v1/customers")
    assert REQUEST_ID.match(default.headers["Request-Id"])
    assert default.headers["Stripe-Version"] == "2024-06-20"
    pinned = api.get("/v1/customers", headers={"Stripe-Version": "2023-10-16"})
    assert pinned.headers["Stripe-Version"] == "2023-10-16"
    assert pinned.headers["Request-Id"] != default.headers["Request-Id"]
    bad = api.get("/v1/customers", headers={"Stripe-Version": "yesterday"})
    assert error(bad, 400)["message"] == "Invalid Stripe API version: yesterday"


# -- form decoding ---------------------------------------------------------------------


def test_nested_arrays_and_indexed_form_keys(api: httpx.Client) -> None:
    body = (
        "name=Ada&email=ada%40example.com&metadata[plan]=pro&metadata[seats]=3"
        "&address[line1]=1+Main+St&address[country]=GB&preferred_locales[]=en&preferred_locales[]=fr"
        "&invoice_settings[custom_fields][0][name]=VAT&invoice_settings[custom_fields][0][value]=GB1"
        "&shipping[name]=Ada&shipping[address][city]=London"
    )
    created = ok(
        api.post(
            "/v1/customers",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    assert created["metadata"] == {"plan": "pro", "seats": "3"}
    assert created["address"] == {
        "line1": "1 Main St",
        "line2": None,
        "city": None,
        "state": None,
        "postal_code": None,
        "country": "GB",
    }
    assert created["preferred_locales"] == ["en", "fr"]
    assert created["invoice_settings"]["custom_fields"] == [{"name": "VAT", "value": "GB1"}]
    assert created["shipping"]["name"] == "Ada"
    assert created["shipping"]["address"]["city"] == "London"
    entry = log(api, method="POST")[-1]
    assert entry["params"]["metadata"] == {"plan": "pro", "seats": "3"}


def test_empty_values_unset(api: httpx.Client) -> None:
    cus = customer(
        api, description="vip", **{"metadata[a]": "1", "metadata[b]": "2", "metadata[c]": "3"}
    )
    updated = ok(
        api.post(f"/v1/customers/{cus['id']}", data={"metadata[a]": "", "description": ""})
    )
    assert updated["metadata"] == {"b": "2", "c": "3"}
    assert updated["description"] is None
    cleared = ok(api.post(f"/v1/customers/{cus['id']}", data={"metadata": ""}))
    assert cleared["metadata"] == {}
    err = error(api.post("/v1/products", data={"name": ""}), 400)
    assert err["code"] == "parameter_invalid_empty"
    assert err["param"] == "name"


# -- customers -------------------------------------------------------------------------


def test_customer_shape_and_lifecycle(api: httpx.Client) -> None:
    cus = customer(api, email="ada@example.com", name="Ada", phone="+441234")
    assert re.match(r"^cus_[0-9A-Za-z]{14}$", cus["id"])
    assert cus["object"] == "customer" and cus["livemode"] is False
    assert isinstance(cus["created"], int)
    assert re.match(r"^[A-Z0-9]{8}$", cus["invoice_prefix"])
    assert cus["balance"] == 0 and cus["delinquent"] is False and cus["tax_exempt"] == "none"
    assert cus["next_invoice_sequence"] == 1 and cus["preferred_locales"] == []
    for null in ("currency", "default_source", "discount", "shipping", "test_clock", "address"):
        assert cus[null] is None
    assert ok(api.get(f"/v1/customers/{cus['id']}")) == cus
    updated = ok(
        api.post(f"/v1/customers/{cus['id']}", data={"name": "Ada L", "tax_exempt": "exempt"})
    )
    assert updated["name"] == "Ada L" and updated["tax_exempt"] == "exempt"
    assert updated["email"] == "ada@example.com"

    deleted = ok(api.delete(f"/v1/customers/{cus['id']}"))
    assert deleted == {"id": cus["id"], "object": "customer", "deleted": True}
    assert ok(api.get(f"/v1/customers/{cus['id']}")) == deleted
    err = error(api.post(f"/v1/customers/{cus['id']}", data={"name": "x"}), 404)
    assert err["code"] == "resource_missing"
    assert objects(api, "customers") == []
    assert objects(api, "customers", deleted=True)[0]["name"] == "Ada L"


def test_missing_customer(api: httpx.Client) -> None:
    err = error(api.get("/v1/customers/cus_nope"), 404)
    assert err == {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "param": "id",
        "message": "No such customer: 'cus_nope'",
        "request_log_url": err["request_log_url"],
    }


def test_customer_list_pagination_and_filters(api: httpx.Client) -> None:
    made = [customer(api, email=f"c{i}@example.com") for i in range(5)]
    customer(api, email="C0@example.com")
    newest_first = [c["id"] for c in reversed(made)]
    first = ok(api.get("/v1/customers", params={"limit": 2, "email": "c0@example.com"}))
    assert [c["id"] for c in first["data"]] == [made[0]["id"]]  # exact, case-sensitive
    page = ok(api.get("/v1/customers", params={"limit": 2, "starting_after": newest_first[0]}))
    assert page["object"] == "list" and page["url"] == "/v1/customers"
    assert [c["id"] for c in page["data"]] == newest_first[1:3]
    assert page["has_more"] is True
    back = ok(api.get("/v1/customers", params={"limit": 2, "ending_before": newest_first[3]}))
    assert [c["id"] for c in back["data"]] == newest_first[1:3]
    everyone = ok(api.get("/v1/customers", params={"limit": 100}))
    assert len(everyone["data"]) == 6 and everyone["has_more"] is False
    created = made[0]["created"]
    later = ok(api.get("/v1/customers", params={"created[gt]": created, "limit": 100}))
    assert later["data"] == []
    assert len(ok(api.get("/v1/customers", params={"created[gte]": created}))["data"]) == 6
    err = error(api.get("/v1/customers", params={"limit": 101}), 400)
    assert err["param"] == "limit"


def test_customer_search(api: httpx.Client) -> None:
    ada = customer(api, email="ada@example.com", name="Ada", **{"metadata[tier]": "gold"})
    bob = customer(api, email="bob@example.com", name="Bob", phone="555")
    found = ok(api.get("/v1/customers/search", params={"query": "email:'ada@example.com'"}))
    assert found["object"] == "search_result" and found["url"] == "/v1/customers/search"
    assert found["next_page"] is None and found["has_more"] is False
    assert [c["id"] for c in found["data"]] == [ada["id"]]
    meta = ok(
        api.get("/v1/customers/search", params={"query": "metadata['tier']:'gold' AND name:'Ada'"})
    )
    assert [c["id"] for c in meta["data"]] == [ada["id"]]
    either = ok(api.get("/v1/customers/search", params={"query": "name:'Ada' OR phone:'555'"}))
    assert {c["id"] for c in either["data"]} == {ada["id"], bob["id"]}
    paged = ok(api.get("/v1/customers/search", params={"query": "email~'example'", "limit": 1}))
    assert paged["has_more"] is True and paged["next_page"]
    rest = ok(
        api.get(
            "/v1/customers/search",
            params={"query": "email~'example'", "limit": 1, "page": paged["next_page"]},
        )
    )
    assert {paged["data"][0]["id"], rest["data"][0]["id"]} == {ada["id"], bob["id"]}
    err = error(api.get("/v1/customers/search", params={"query": "colour:'red'"}), 400)
    assert err["param"] == "query" and "unsupported search field" in err["message"]
    assert error(api.get("/v1/customers/search"), 400)["code"] == "parameter_missing"


def test_customer_validation_errors(api: httpx.Client) -> None:
    err = error(api.post("/v1/customers", data={"email": "not-an-email"}), 400)
    assert err["code"] == "email_invalid" and err["param"] == "email"
    assert err["message"] == "Invalid email address: not-an-email"
    err = error(api.post("/v1/customers", data={"foo": "1"}), 400)
    assert err["code"] == "parameter_unknown" and err["param"] == "foo"
    assert err["message"] == "Received unknown parameter: foo"
    assert err["doc_url"] == "https://stripe.com/docs/error-codes/parameter-unknown"
    assert err["request_log_url"].startswith("https://dashboard.stripe.com/test/logs/req_")
    err = error(api.post("/v1/customers", data={"address[planet]": "Mars"}), 400)
    assert err["param"] == "address[planet]"
    err = error(api.post("/v1/customers", data={"balance": "abc"}), 400)
    assert err == err | {"param": "balance", "message": "Invalid integer: abc"}
    err = error(api.post("/v1/customers", data={"tax_exempt": "maybe"}), 400)
    assert err["param"] == "tax_exempt"
    assert err["message"] == "Invalid tax_exempt: must be one of none, exempt, or reverse"
    assert error(api.post("/v1/customers", data={"shipping[name]": "x"}), 400)["param"] == (
        "shipping[address]"
    )
    assert objects(api, "customers") == []


def test_metadata_limits(api: httpx.Client) -> None:
    too_long_key = error(api.post("/v1/customers", data={f"metadata[{'k' * 41}]": "v"}), 400)
    assert too_long_key["param"] == "metadata"
    too_long_value = error(api.post("/v1/customers", data={"metadata[k]": "v" * 501}), 400)
    assert too_long_value["param"] == "metadata"
    fifty = {f"metadata[k{i}]": "v" for i in range(50)}
    cus = customer(api, **fifty)
    assert len(cus["metadata"]) == 50
    err = error(api.post(f"/v1/customers/{cus['id']}", data={"metadata[one_more]": "v"}), 400)
    assert err["param"] == "metadata"
    swap = ok(
        api.post(f"/v1/customers/{cus['id']}", data={"metadata[k0]": "", "metadata[new]": "v"})
    )
    assert len(swap["metadata"]) == 50 and "new" in swap["metadata"]


# -- products --------------------------------------------------------------------------


def test_product_lifecycle(api: httpx.Client) -> None:
    prod = product(api, description="The pro plan", **{"images[]": "https://x/y.png"})
    assert re.match(r"^prod_[0-9A-Za-z]{14}$", prod["id"])
    assert prod["active"] is True and prod["type"] == "service"
    assert prod["images"] == ["https://x/y.png"] and prod["marketing_features"] == []
    for null in ("default_price", "package_dimensions", "shippable", "unit_label", "url"):
        assert prod[null] is None
    assert prod["updated"] == prod["created"]
    missing = error(api.post("/v1/products", data={}), 400)
    assert (
        missing["code"] == "parameter_missing"
        and missing["message"] == "Missing required param: name."
    )
    updated = ok(api.post(f"/v1/products/{prod['id']}", data={"active": "false", "url": ""}))
    assert updated["active"] is False
    err = error(api.post(f"/v1/products/{prod['id']}", data={"active": "maybe"}), 400)
    assert err["param"] == "active" and err["message"] == "Invalid boolean: maybe"
    assert ok(api.delete(f"/v1/products/{prod['id']}")) == {
        "id": prod["id"],
        "object": "product",
        "deleted": True,
    }
    assert error(api.get(f"/v1/products/{prod['id']}"), 404)["code"] == "resource_missing"


def test_product_with_prices_cannot_be_deleted(api: httpx.Client) -> None:
    prod = product(api)
    price(api, prod["id"])
    err = error(api.delete(f"/v1/products/{prod['id']}"), 400)
    assert err["message"] == (
        "This product cannot be deleted because it has one or more user-created prices."
    )
    assert objects(api, "products")[0]["id"] == prod["id"]


def test_product_list_and_search(api: httpx.Client) -> None:
    live = product(api, "Live", **{"metadata[family]": "a"})
    archived = product(api, "Archived", active="false")
    listed = ok(api.get("/v1/products", params={"active": "true"}))
    assert [p["id"] for p in listed["data"]] == [live["id"]]
    found = ok(api.get("/v1/products/search", params={"query": "active:'true'"}))
    assert [p["id"] for p in found["data"]] == [live["id"]]
    by_name = ok(api.get("/v1/products/search", params={"query": "name:'archived'"}))
    assert [p["id"] for p in by_name["data"]] == [archived["id"]]
    by_meta = ok(api.get("/v1/products/search", params={"query": "metadata['family']:'a'"}))
    assert [p["id"] for p in by_meta["data"]] == [live["id"]]


def test_product_default_price_data(api: httpx.Client) -> None:
    prod = ok(
        api.post(
            "/v1/products",
            data={
                "name": "Starter",
                "default_price_data[currency]": "eur",
                "default_price_data[unit_amount]": "500",
            },
        )
    )
    default = ok(api.get(f"/v1/prices/{prod['default_price']}"))
    assert default["product"] == prod["id"] and default["unit_amount"] == 500
    expanded = ok(api.get(f"/v1/products/{prod['id']}", params={"expand[]": "default_price"}))
    assert expanded["default_price"]["id"] == default["id"]


# -- prices ----------------------------------------------------------------------------


def test_price_shape_and_update(api: httpx.Client) -> None:
    prod = product(api)
    recurring = price(
        api,
        prod["id"],
        nickname="Monthly",
        lookup_key="pro_monthly",
        **{"recurring[interval]": "month", "recurring[interval_count]": "3", "metadata[x]": "1"},
    )
    assert re.match(r"^price_[0-9A-Za-z]{24}$", recurring["id"])
    assert recurring["type"] == "recurring" and recurring["billing_scheme"] == "per_unit"
    assert recurring["recurring"] == {
        "aggregate_usage": None,
        "interval": "month",
        "interval_count": 3,
        "meter": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }
    assert recurring["unit_amount"] == 1000 and recurring["unit_amount_decimal"] == "1000"
    assert recurring["tax_behavior"] == "unspecified" and recurring["tiers_mode"] is None
    one_time = ok(
        api.post(
            "/v1/prices",
            data={"currency": "USD", "unit_amount_decimal": "12.5", "product": prod["id"]},
        )
    )
    assert one_time["type"] == "one_time" and one_time["recurring"] is None
    assert one_time["currency"] == "usd"
    assert one_time["unit_amount"] is None and one_time["unit_amount_decimal"] == "12.5"

    updated = ok(
        api.post(
            f"/v1/prices/{recurring['id']}",
            data={
                "active": "false",
                "nickname": "",
                "tax_behavior": "exclusive",
                "metadata[x]": "",
            },
        )
    )
    assert updated["active"] is False and updated["nickname"] is None
    assert updated["tax_behavior"] == "exclusive" and updated["metadata"] == {}
    err = error(api.post(f"/v1/prices/{recurring['id']}", data={"tax_behavior": "inclusive"}), 400)
    assert err["param"] == "tax_behavior"
    for immutable in ("unit_amount", "currency", "product"):
        err = error(api.post(f"/v1/prices/{recurring['id']}", data={immutable: "1"}), 400)
        assert err["code"] == "parameter_unknown" and err["param"] == immutable
        assert err["message"] == f"Received unknown parameter: {immutable}"
    err = error(api.post(f"/v1/prices/{recurring['id']}", data={"recurring[interval]": "day"}), 400)
    assert err["param"] == "recurring"


def test_prices_cannot_be_deleted(api: httpx.Client) -> None:
    made = price(api, product(api)["id"])
    err = error(api.delete(f"/v1/prices/{made['id']}"), 404)
    assert err["type"] == "invalid_request_error"
    assert err["message"] == (
        f"Unrecognized request URL (DELETE: /v1/prices/{made['id']}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/."
    )
    assert len(objects(api, "prices")) == 1


def test_price_validation(api: httpx.Client) -> None:
    prod = product(api)
    cases = [
        ({"unit_amount": "1", "product": prod["id"]}, "currency", "parameter_missing"),
        ({"currency": "usd", "unit_amount": "1"}, "product", "parameter_missing"),
        ({"currency": "usd", "product": prod["id"]}, "unit_amount", "parameter_missing"),
        ({"currency": "xxx", "unit_amount": "1", "product": prod["id"]}, "currency", None),
        ({"currency": "usd", "unit_amount": "-1", "product": prod["id"]}, "unit_amount", None),
        (
            {"currency": "usd", "unit_amount": "1", "product": "prod_nope"},
            "product",
            "resource_missing",
        ),
        (
            {
                "currency": "usd",
                "unit_amount": "1",
                "product": prod["id"],
                "recurring[interval]": "hour",
            },
            "recurring[interval]",
            None,
        ),
        (
            {
                "currency": "usd",
                "unit_amount": "1",
                "product": prod["id"],
                "product_data[name]": "x",
            },
            "product",
            None,
        ),
    ]
    for data, param, code in cases:
        err = error(api.post("/v1/prices", data=data), 400)
        assert err["param"] == param, (data, err)
        assert err.get("code") == code, (data, err)
    bad_interval = error(
        api.post(
            "/v1/prices",
            data={
                "currency": "usd",
                "unit_amount": "1",
                "product": prod["id"],
                "recurring[interval]": "hour",
            },
        ),
        400,
    )
    assert (
        bad_interval["message"]
        == "Invalid recurring[interval]: must be one of day, week, month, or year"
    )
    assert objects(api, "prices") == []


def test_price_product_data_and_lookup_keys(api: httpx.Client) -> None:
    made = ok(
        api.post(
            "/v1/prices",
            data={
                "currency": "usd",
                "unit_amount": "100",
                "product_data[name]": "Inline",
                "lookup_key": "std",
            },
        )
    )
    assert ok(api.get(f"/v1/products/{made['product']}"))["name"] == "Inline"
    data = {
        "currency": "usd",
        "unit_amount": "200",
        "product": made["product"],
        "lookup_key": "std",
    }
    err = error(api.post("/v1/prices", data=data), 400)
    assert err["param"] == "lookup_key" and made["id"] in err["message"]
    moved = ok(api.post("/v1/prices", data={**data, "transfer_lookup_key": "true"}))
    assert moved["lookup_key"] == "std"
    assert ok(api.get(f"/v1/prices/{made['id']}"))["lookup_key"] is None
    by_key = ok(api.get("/v1/prices", params={"lookup_keys[]": "std"}))
    assert [p["id"] for p in by_key["data"]] == [moved["id"]]
    expanded = ok(api.get(f"/v1/prices/{moved['id']}", params={"expand[]": "product"}))
    assert expanded["product"]["name"] == "Inline"
    err = error(api.get(f"/v1/prices/{moved['id']}", params={"expand[]": "nope"}), 400)
    assert "cannot be expanded" in err["message"]


def test_price_list_and_search(api: httpx.Client) -> None:
    one, two = product(api, "One"), product(api, "Two")
    monthly = price(api, one["id"], **{"recurring[interval]": "month"})
    single = price(api, one["id"], active="false")
    other = price(api, two["id"], lookup_key="other", **{"metadata[k]": "v"})
    by_product = ok(api.get("/v1/prices", params={"product": one["id"]}))
    assert [p["id"] for p in by_product["data"]] == [single["id"], monthly["id"]]
    recurring = ok(api.get("/v1/prices", params={"type": "recurring"}))
    assert [p["id"] for p in recurring["data"]] == [monthly["id"]]
    active = ok(api.get("/v1/prices", params={"active": "false"}))
    assert [p["id"] for p in active["data"]] == [single["id"]]
    paged = ok(api.get("/v1/prices", params={"limit": 1, "starting_after": other["id"]}))
    assert [p["id"] for p in paged["data"]] == [single["id"]] and paged["has_more"] is True
    for query, expected in [
        (f"product:'{one['id']}'", {monthly["id"], single["id"]}),
        (f"product:'{one['id']}' AND active:'true'", {monthly["id"]}),
        ("lookup_key:'other'", {other["id"]}),
        ("metadata['k']:'v'", {other["id"]}),
    ]:
        found = ok(api.get("/v1/prices/search", params={"query": query}))
        assert {p["id"] for p in found["data"]} == expected, query


# -- coupons ---------------------------------------------------------------------------


def test_coupon_lifecycle(api: httpx.Client) -> None:
    pct = ok(
        api.post(
            "/v1/coupons",
            data={"percent_off": "25.5", "duration": "repeating", "duration_in_months": "3"},
        )
    )
    assert re.match(r"^[0-9A-Za-z]{8}$", pct["id"])
    assert pct["percent_off"] == 25.5 and pct["amount_off"] is None
    assert pct["duration_in_months"] == 3 and pct["times_redeemed"] == 0 and pct["valid"] is True
    fixed = ok(
        api.post(
            "/v1/coupons",
            data={"id": "WELCOME10", "amount_off": "1000", "currency": "usd", "name": "Welcome"},
        )
    )
    assert fixed["id"] == "WELCOME10" and fixed["duration"] == "once" and fixed["currency"] == "usd"
    dup = error(api.post("/v1/coupons", data={"id": "WELCOME10", "percent_off": "5"}), 400)
    assert dup == dup | {
        "code": "resource_already_exists",
        "param": "id",
        "message": "Coupon already exists.",
    }
    renamed = ok(api.post("/v1/coupons/WELCOME10", data={"name": "Hi", "metadata[src]": "ads"}))
    assert renamed["name"] == "Hi" and renamed["metadata"] == {"src": "ads"}
    err = error(api.post("/v1/coupons/WELCOME10", data={"percent_off": "10"}), 400)
    assert err["code"] == "parameter_unknown" and err["param"] == "percent_off"
    listed = ok(api.get("/v1/coupons"))
    assert [c["id"] for c in listed["data"]] == ["WELCOME10", pct["id"]]
    assert ok(api.delete("/v1/coupons/WELCOME10")) == {
        "id": "WELCOME10",
        "object": "coupon",
        "deleted": True,
    }
    assert error(api.get("/v1/coupons/WELCOME10"), 404)["message"] == "No such coupon: 'WELCOME10'"
    assert error(api.post("/v1/coupons", data={"id": "WELCOME10", "percent_off": "5"}), 400)[
        "code"
    ] == ("resource_already_exists")


def test_coupon_validation(api: httpx.Client) -> None:
    cases = [
        ({}, "percent_off"),
        ({"percent_off": "0"}, "percent_off"),
        ({"percent_off": "101"}, "percent_off"),
        ({"percent_off": "abc"}, "percent_off"),
        ({"amount_off": "100"}, "currency"),
        ({"percent_off": "5", "amount_off": "100", "currency": "usd"}, "amount_off"),
        ({"percent_off": "5", "duration": "repeating"}, "duration_in_months"),
        ({"percent_off": "5", "duration": "sometimes"}, "duration"),
    ]
    for data, param in cases:
        assert error(api.post("/v1/coupons", data=data), 400)["param"] == param, data
    assert objects(api, "coupons") == []


# -- idempotency -----------------------------------------------------------------------


def test_idempotent_replay(api: httpx.Client) -> None:
    headers = {"Idempotency-Key": "create-ada"}
    first = api.post("/v1/customers", data={"email": "ada@example.com"}, headers=headers)
    again = api.post("/v1/customers", data={"email": "ada@example.com"}, headers=headers)
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Original-Request"] == first.headers["Request-Id"]
    assert again.headers["Request-Id"] != first.headers["Request-Id"]
    assert len(objects(api, "customers")) == 1
    entries = log(api, method="POST")
    assert [(e["idempotency_key"], e["replayed"]) for e in entries] == [
        ("create-ada", False),
        ("create-ada", True),
    ]
    # The same key under another API key would be another key entirely; a new key runs anew.
    other = api.post(
        "/v1/customers", data={"email": "ada@example.com"}, headers={"Idempotency-Key": "k2"}
    )
    assert other.json()["id"] != first.json()["id"]


def test_idempotent_replay_of_a_validation_error(api: httpx.Client) -> None:
    headers = {"Idempotency-Key": "bad-email"}
    first = api.post("/v1/customers", data={"email": "nope"}, headers=headers)
    again = api.post("/v1/customers", data={"email": "nope"}, headers=headers)
    assert first.status_code == again.status_code == 400
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Stripe-Should-Retry"] == "false"


def test_idempotency_key_reused_with_other_parameters(api: httpx.Client) -> None:
    headers = {"Idempotency-Key": "k"}
    ok(api.post("/v1/customers", data={"email": "a@example.com"}, headers=headers))
    for response in (
        api.post("/v1/customers", data={"email": "b@example.com"}, headers=headers),
        api.post("/v1/products", data={"email": "a@example.com"}, headers=headers),
    ):
        err = error(response, 400)
        assert err["type"] == "idempotency_error"
        assert err["message"] == (
            "Keys for idempotent requests can only be used with the same parameters they were "
            "first used with. Try using a key other than 'k' if you meant to execute a different "
            "request."
        )
    too_long = api.post("/v1/customers", headers={"Idempotency-Key": "x" * 256})
    assert error(too_long, 400)["type"] == "idempotency_error"
    assert len(objects(api, "customers")) == 1


def test_idempotency_key_in_flight(api: httpx.Client, server: BackgroundSandbox) -> None:
    # The first request stalls inside the idempotency layer; a retry meanwhile is refused.
    api.post(
        "/_sandbox/faults", json={"match": {"method": "POST"}, "delay_ms": 400}
    ).raise_for_status()
    headers = {"Authorization": f"Bearer {KEY}", "Idempotency-Key": "slow"}
    results: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: results.append(
            httpx.post(f"{server.url}/v1/customers", data={"name": "S"}, headers=headers)
        )
    )
    slow.start()
    for _ in range(100):
        if any(e["idempotency_key"] == "slow" for e in log(api)):
            break
        threading.Event().wait(0.01)
    busy = api.post("/v1/customers", data={"name": "S"}, headers={"Idempotency-Key": "slow"})
    slow.join()
    err = error(busy, 409)
    assert err["type"] == "idempotency_error" and err["code"] == "idempotency_key_in_use"
    assert busy.headers["Stripe-Should-Retry"] == "true"
    assert ok(results[0])["name"] == "S"
    replay = api.post("/v1/customers", data={"name": "S"}, headers={"Idempotency-Key": "slow"})
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.content == results[0].content
    assert len(objects(api, "customers")) == 1


def test_applied_fault_then_retry_replays_the_success(api: httpx.Client) -> None:
    fault = {
        "match": {"method": "POST", "path_regex": "^/v1/customers$"},
        "status": 500,
        "apply": True,
    }
    api.post("/_sandbox/faults", json=fault).raise_for_status()
    headers = {"Idempotency-Key": "once-only"}
    failed = api.post("/v1/customers", data={"email": "ada@example.com"}, headers=headers)
    err = error(failed, 500)
    assert err["type"] == "api_error" and failed.headers["Stripe-Should-Retry"] == "true"
    assert len(objects(api, "customers")) == 1  # the change stuck
    retried = ok(api.post("/v1/customers", data={"email": "ada@example.com"}, headers=headers))
    assert retried["id"] == objects(api, "customers")[0]["id"]
    assert len(objects(api, "customers")) == 1
    entries = log(api, method="POST")
    assert [(e["status"], e["replayed"], e["fault_id"] is not None) for e in entries] == [
        (500, False, True),
        (200, True, False),
    ]


def test_plain_fault_is_not_saved_so_the_retry_runs(api: httpx.Client) -> None:
    api.post(
        "/_sandbox/faults", json={"match": {"method": "POST"}, "status": 503}
    ).raise_for_status()
    headers = {"Idempotency-Key": "retry-me"}
    assert (
        error(api.post("/v1/customers", data={"name": "A"}, headers=headers), 503)["type"]
        == "api_error"
    )
    assert objects(api, "customers") == []
    retried = api.post("/v1/customers", data={"name": "A"}, headers=headers)
    assert ok(retried)["name"] == "A" and "Idempotent-Replayed" not in retried.headers


# -- switches and faults ---------------------------------------------------------------


def test_rate_limit(api: httpx.Client) -> None:
    config = ok(
        api.post("/_sandbox/config", json={"rate_limit": {"max_requests": 2, "window_s": 30}})
    )
    assert config["rate_limit"] == {"max_requests": 2, "window_s": 30.0}
    headers = {"Idempotency-Key": "limited"}
    assert api.post("/v1/customers", data={"name": "A"}).status_code == 200
    assert api.get("/v1/customers").status_code == 200
    limited = api.post("/v1/customers", data={"name": "B"}, headers=headers)
    err = error(limited, 429)
    assert err == {
        "type": "invalid_request_error",
        "code": "rate_limit",
        "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
        "message": "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
    }
    assert limited.headers["Stripe-Should-Retry"] == "true"
    ok(api.post("/_sandbox/config", json={"rate_limit": None}))
    # The 429 came before the idempotency layer: the key was not used up.
    after = api.post("/v1/customers", data={"name": "B"}, headers=headers)
    assert ok(after)["name"] == "B" and "Idempotent-Replayed" not in after.headers


def test_latency_switch_and_config_errors(api: httpx.Client) -> None:
    ok(api.post("/_sandbox/config", json={"latency_ms": 150}))
    response = api.get("/v1/customers")
    assert response.elapsed.total_seconds() >= 0.15
    assert ok(api.get("/_sandbox/config"))["latency_ms"] == 150
    assert api.post("/_sandbox/config", json={"latency_ms": -1}).status_code == 400
    assert api.post("/_sandbox/config", json={"bogus": 1}).status_code == 400


def test_fault_bodies_and_matching(api: httpx.Client) -> None:
    faults = [
        {"match": {"method": "GET", "path_regex": "^/v1/products"}, "status": 429},
        {"match": {"method": "GET"}, "status": 409, "times": 1},
        {"match": {"method": "GET"}, "status": 402},
        {
            "match": {"method": "GET"},
            "status": 500,
            "body": {"error": {"type": "api_error", "message": "x"}},
            "headers": {"Stripe-Should-Retry": "false"},
        },
    ]
    for fault in faults:
        assert api.post("/_sandbox/faults", json=fault).status_code == 201
    assert len(ok(api.get("/_sandbox/faults"))["results"]) == 4
    rate = api.get("/v1/products")
    assert (
        error(rate, 429)["code"] == "rate_limit" and rate.headers["Stripe-Should-Retry"] == "true"
    )
    lock = api.get("/v1/customers")
    assert (
        error(lock, 409)["code"] == "lock_timeout" and lock.headers["Stripe-Should-Retry"] == "true"
    )
    card = error(api.get("/v1/customers"), 402)
    assert card["type"] == "card_error" and card["code"] == "card_declined"
    custom = api.get("/v1/customers")
    assert custom.status_code == 500 and custom.json() == {
        "error": {"type": "api_error", "message": "x"}
    }
    assert custom.headers["Stripe-Should-Retry"] == "false"
    assert REQUEST_ID.match(custom.headers["Request-Id"])
    assert ok(api.get("/v1/customers"))["data"] == []
    api.post("/_sandbox/faults", json={"status": 500}).raise_for_status()
    assert api.delete("/_sandbox/faults").status_code == 204
    assert ok(api.get("/_sandbox/faults"))["results"] == []
    assert api.post("/_sandbox/faults", json={"status": 200}).status_code == 400


def test_control_api_and_reset(api: httpx.Client) -> None:
    cus = customer(api, name="A")
    ok(api.post("/_sandbox/config", json={"latency_ms": 5}))
    assert [o["id"] for o in objects(api, "customers")] == [cus["id"]]
    assert api.get("/_sandbox/objects/invoices").status_code == 404
    assert [e["path"] for e in log(api)] == ["/v1/customers"]
    assert REQUEST_ID.match(log(api)[0]["correlation_id"])
    assert api.delete("/_sandbox/requests").status_code == 204
    assert log(api) == []
    assert api.post("/_sandbox/reset").status_code == 204
    assert objects(api, "customers") == []
    assert ok(api.get("/_sandbox/config"))["latency_ms"] == 0
    assert error(api.get("/v1/invoices"), 404)["message"].startswith(
        "Unrecognized request URL (GET: /v1/invoices)"
    )
