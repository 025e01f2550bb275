"""The HubSpot sandbox over real HTTP: shapes, validation, batches, faults, controls."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from proxy.sandbox.hubspot import ObjectTypeSpec, PropertyDef, SandboxConfig
from proxy.sandbox.server import BackgroundSandbox

TOKEN = "sandbox-token"
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CONFIG = SandboxConfig(
    object_types={
        "pets": ObjectTypeSpec(
            properties=[
                PropertyDef(name="name", label="Name", type="string", field_type="text"),
                PropertyDef(name="born", label="Born", type="date", field_type="date"),
                PropertyDef(
                    name="tag", label="Tag", type="string", field_type="text", has_unique_value=True
                ),
            ],
            required=["name"],
        )
    }
)


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundSandbox]:
    with BackgroundSandbox(CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: BackgroundSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


@pytest.fixture
def api(client: httpx.Client) -> httpx.Client:
    """An authorised client of a freshly reset sandbox."""
    client.post("/_sandbox/reset").raise_for_status()
    return client


def create(api: httpx.Client, type_: str = "contacts", **props: object) -> dict:
    response = api.post(f"/crm/v3/objects/{type_}", json={"properties": props})
    assert response.status_code == 201, response.text
    return response.json()


def live(api: httpx.Client, type_: str = "contacts", archived: bool = False) -> list[dict]:
    params = {"archived": "true"} if archived else {}
    return api.get(f"/_sandbox/objects/{type_}", params=params).json()["results"]


def log(api: httpx.Client, **filters: str) -> list[dict]:
    return api.get("/_sandbox/requests", params=filters).json()["results"]


def batch(api: httpx.Client, op: str, inputs: list[dict], type_: str = "contacts"):
    return api.post(f"/crm/v3/objects/{type_}/batch/{op}", json={"inputs": inputs})


# -- single objects ---------------------------------------------------------------------


def test_create_returns_hubspot_object_shape(api: httpx.Client) -> None:
    response = api.post(
        "/crm/v3/objects/contacts",
        json={"properties": {"email": "Ada@Example.com", "firstname": "Ada", "phone": None}},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"].isdigit()
    assert body["archived"] is False
    assert ISO_MS.match(body["createdAt"]) and body["updatedAt"] == body["createdAt"]
    props = body["properties"]
    assert props["email"] == "ada@example.com"  # HubSpot lower-cases emails
    assert props["hs_object_id"] == body["id"]
    assert props["createdate"] == props["lastmodifieddate"] == body["createdAt"]
    assert "phone" not in props  # JSON null is ignored
    assert re.match(r"^[0-9a-f-]{36}$", response.headers["X-HubSpot-Correlation-Id"])


def test_values_are_stringified_and_normalised(api: httpx.Client) -> None:
    deal = create(api, "deals", dealname=7, amount="1e3", closedate=1714521600000)
    assert deal["properties"]["dealname"] == "7"
    assert deal["properties"]["amount"] == "1000"
    assert deal["properties"]["closedate"] == "2024-05-01T00:00:00.000Z"
    assert deal["properties"]["hs_lastmodifieddate"] == deal["updatedAt"]
    pet = create(api, "pets", name="Rex", born="2020-02-03T00:00:00Z")
    assert pet["properties"]["born"] == "2020-02-03"
    assert pet["properties"]["hs_createdate"] == pet["createdAt"]
    api.post("/crm/v3/properties/contacts", json=_prop("vip", "bool", "booleancheckbox"))
    assert create(api, vip=True)["properties"]["vip"] == "true"
    assert create(api, email="n@x.io", vip="FALSE")["properties"]["vip"] == "false"


def test_get_by_id_email_and_chosen_properties(api: httpx.Client) -> None:
    made = create(api, email="bo@x.io", firstname="Bo", city="Oslo")
    by_id = api.get(f"/crm/v3/objects/contacts/{made['id']}").json()
    # Without ?properties HubSpot returns the type's default properties, null when unset.
    assert by_id["properties"]["firstname"] == "Bo"
    assert by_id["properties"]["lastname"] is None
    assert "city" not in by_id["properties"]
    chosen = api.get(
        "/crm/v3/objects/contacts/BO@x.io",
        params={"idProperty": "email", "properties": "city,phone,nonsense"},
    ).json()
    assert chosen["id"] == made["id"]
    assert chosen["properties"]["city"] == "Oslo"
    assert chosen["properties"]["phone"] is None
    assert "nonsense" not in chosen["properties"]


def test_missing_object_is_404_object_not_found(api: httpx.Client) -> None:
    response = api.get("/crm/v3/objects/contacts/424242")
    assert response.status_code == 404
    body = response.json()
    assert body["category"] == "OBJECT_NOT_FOUND"
    assert body["status"] == "error"
    assert body["correlationId"] == response.headers["X-HubSpot-Correlation-Id"]
    assert api.patch("/crm/v3/objects/contacts/424242", json={"properties": {}}).status_code == 404


def test_patch_updates_clears_and_ignores_null(api: httpx.Client) -> None:
    made = create(api, email="c@x.io", firstname="C", city="Rome")
    time.sleep(0.002)
    response = api.patch(
        f"/crm/v3/objects/contacts/{made['id']}",
        json={"properties": {"firstname": "Cee", "city": "", "email": None}},
    )
    assert response.status_code == 200
    props = response.json()["properties"]
    assert props["firstname"] == "Cee" and props["email"] == "c@x.io"
    assert "city" not in props
    assert response.json()["updatedAt"] > made["updatedAt"]
    by_email = api.patch(
        "/crm/v3/objects/contacts/c@x.io?idProperty=email", json={"properties": {"city": "Pisa"}}
    )
    assert by_email.json()["properties"]["city"] == "Pisa"


def test_archive_is_idempotent_and_hides_the_object(api: httpx.Client) -> None:
    made = create(api, email="d@x.io")
    path = f"/crm/v3/objects/contacts/{made['id']}"
    assert api.delete(path).status_code == 204
    assert api.delete(path).status_code == 204
    assert api.delete("/crm/v3/objects/contacts/999999").status_code == 204
    assert api.get(path).status_code == 404
    archived = api.get(path, params={"archived": "true"}).json()
    assert archived["archived"] is True and ISO_MS.match(archived["archivedAt"])
    assert live(api) == []
    assert [o["id"] for o in live(api, archived=True)] == [made["id"]]
    # The email is free again once the holder is archived.
    create(api, email="d@x.io")


def test_list_pages_with_after(api: httpx.Client) -> None:
    ids = [create(api, email=f"p{i}@x.io")["id"] for i in range(5)]
    seen, after = [], None
    while True:
        params = {"limit": 2} | ({"after": after} if after else {})
        page = api.get("/crm/v3/objects/contacts", params=params).json()
        seen += [o["id"] for o in page["results"]]
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
    assert seen == ids
    assert api.get("/crm/v3/objects/contacts", params={"limit": 101}).status_code == 400


# -- errors ---------------------------------------------------------------------------


def test_duplicate_email_is_409_with_existing_id(api: httpx.Client) -> None:
    made = create(api, email="dup@x.io")
    response = api.post("/crm/v3/objects/contacts", json={"properties": {"email": "DUP@x.io"}})
    assert response.status_code == 409
    assert response.json() == {
        "status": "error",
        "message": f"Contact already exists. Existing ID: {made['id']}",
        "correlationId": response.headers["X-HubSpot-Correlation-Id"],
        "category": "CONFLICT",
    }
    other = create(api, email="other@x.io")
    clash = api.patch(
        f"/crm/v3/objects/contacts/{other['id']}", json={"properties": {"email": "dup@x.io"}}
    )
    assert clash.status_code == 409


@pytest.mark.parametrize(
    ("type_", "props", "code", "name"),
    [
        ("contacts", {"foo": "x"}, "PROPERTY_DOESNT_EXIST", "foo"),
        ("contacts", {"email": "not-an-email"}, "INVALID_EMAIL", "email"),
        ("contacts", {"createdate": "2024-01-01"}, "READ_ONLY_VALUE", "createdate"),
        ("contacts", {"hs_object_id": "5"}, "READ_ONLY_VALUE", "hs_object_id"),
        ("contacts", {"lifecyclestage": "vip"}, "INVALID_OPTION", "lifecyclestage"),
        ("deals", {"amount": "12abc"}, "INVALID_FLOAT", "amount"),
        ("deals", {"closedate": "tomorrow"}, "INVALID_DATE", "closedate"),
        ("pets", {"name": "x", "born": "2024-01-01T10:00:00Z"}, "INVALID_DATE", "born"),
        ("pets", {"born": "2024-01-01"}, "REQUIRED_PROPERTY", "name"),
    ],
)
def test_validation_errors(api: httpx.Client, type_: str, props: dict, code: str, name: str):
    response = api.post(f"/crm/v3/objects/{type_}", json={"properties": props})
    assert response.status_code == 400
    body = response.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: ")
    verdicts = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert verdicts[0]["error"] == code and verdicts[0]["name"] == name
    assert body["errors"][0]["code"] == code
    assert body["errors"][0]["context"] == {"propertyName": [name]}
    assert body["correlationId"]
    assert live(api, type_) == []


def test_all_bad_properties_are_listed_and_bad_json_rejected(api: httpx.Client) -> None:
    body = api.post(
        "/crm/v3/objects/contacts", json={"properties": {"a": "1", "email": "x", "b": "2"}}
    ).json()
    assert [e["context"]["propertyName"][0] for e in body["errors"]] == ["a", "email", "b"]
    nested = api.post("/crm/v3/objects/contacts", json={"properties": {"email": {"x": 1}}})
    assert nested.status_code == 400
    garbage = api.post("/crm/v3/objects/contacts", content=b"{not json")
    assert garbage.status_code == 400 and garbage.json()["category"] == "VALIDATION_ERROR"


def test_auth_is_required_except_for_sandbox_controls(server: BackgroundSandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = httpx.get(f"{server.url}/crm/v3/objects/contacts", headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["category"] == "INVALID_AUTHENTICATION"
        assert body["message"].startswith("Authentication credentials not found")
        assert body["correlationId"] == response.headers["X-HubSpot-Correlation-Id"]
    assert httpx.get(f"{server.url}/_sandbox/requests").status_code == 200


# -- properties and custom objects ----------------------------------------------------


def _prop(name: str, type_: str = "string", field_type: str = "text", **extra: object) -> dict:
    return {
        "name": name,
        "label": name.title(),
        "type": type_,
        "fieldType": field_type,
        "groupName": "contactinformation",
        **extra,
    }


def test_properties_api_registers_custom_properties(api: httpx.Client) -> None:
    names = {p["name"] for p in api.get("/crm/v3/properties/contacts").json()["results"]}
    assert {"email", "firstname", "lastname", "phone", "lifecyclestage", "createdate"} <= names
    assert "user_id" not in names
    assert create_fails_with(api, {"user_id": "u1"}) == "PROPERTY_DOESNT_EXIST"
    response = api.post("/crm/v3/properties/contacts", json=_prop("user_id", "number", "number"))
    assert response.status_code == 201
    created = response.json()
    assert created["name"] == "user_id" and created["type"] == "number"
    assert created["modificationMetadata"]["readOnlyValue"] is False
    assert api.get("/crm/v3/properties/contacts/user_id").json()["fieldType"] == "number"
    assert api.get("/crm/v3/properties/contacts/nope").status_code == 404
    again = api.post("/crm/v3/properties/contacts", json=_prop("user_id"))
    assert again.status_code == 409
    assert create(api, email="u@x.io", user_id=42)["properties"]["user_id"] == "42"
    bad = api.post("/crm/v3/properties/contacts", json=_prop("x", field_type="hologram"))
    assert bad.status_code == 400
    assert api.post("/crm/v3/properties/contacts", json={"name": "x"}).status_code == 400


def create_fails_with(api: httpx.Client, props: dict) -> str:
    response = api.post("/crm/v3/objects/contacts", json={"properties": props})
    assert response.status_code == 400
    return response.json()["errors"][0]["code"]


def test_unique_custom_property_conflicts_and_unknown_types_are_accepted(api: httpx.Client):
    first = create(api, "pets", name="Rex", tag="T1")
    clash = api.post("/crm/v3/objects/pets", json={"properties": {"name": "Max", "tag": "T1"}})
    assert clash.status_code == 409
    assert clash.json()["message"] == f"Pets already exists. Existing ID: {first['id']}"
    assert clash.json()["context"] == {"propertyName": ["tag"]}
    # Any other type name is a custom object with only system properties until defined.
    ship = create(api, "ships")
    assert set(ship["properties"]) == {"hs_object_id", "hs_createdate", "hs_lastmodifieddate"}
    api.post("/crm/v3/properties/ships", json=_prop("hull"))
    assert create(api, "ships", hull="steel")["properties"]["hull"] == "steel"


# -- batches --------------------------------------------------------------------------


def test_batch_create_success_and_size_limits(api: httpx.Client) -> None:
    response = batch(api, "create", [{"properties": {"email": f"b{i}@x.io"}} for i in range(3)])
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "COMPLETE"
    assert ISO_MS.match(body["startedAt"]) and ISO_MS.match(body["completedAt"])
    assert sorted(r["properties"]["email"] for r in body["results"]) == [
        "b0@x.io",
        "b1@x.io",
        "b2@x.io",
    ]
    too_many = batch(api, "create", [{"properties": {}}] * 101)
    assert too_many.status_code == 400 and too_many.json()["category"] == "VALIDATION_ERROR"
    assert batch(api, "create", []).status_code == 400
    assert len(live(api)) == 3


def test_batch_create_with_an_invalid_input_is_rejected_whole(api: httpx.Client) -> None:
    existing = create(api, email="taken@x.io")
    inputs = [{"properties": {"email": "fresh@x.io"}}, {"properties": {"email": "taken@x.io"}}]
    response = batch(api, "create", inputs)
    assert response.status_code == 409
    assert response.json()["message"] == f"Contact already exists. Existing ID: {existing['id']}"
    invalid = batch(api, "create", [{"properties": {"email": "ok@x.io"}}, {"properties": {"x": 1}}])
    assert invalid.status_code == 400
    assert [o["properties"]["email"] for o in live(api)] == ["taken@x.io"]


def test_batch_create_with_trace_ids_answers_207_per_input(api: httpx.Client) -> None:
    existing = create(api, email="taken@x.io")
    inputs = [
        {"properties": {"email": "fresh@x.io"}, "objectWriteTraceId": "t0"},
        {"properties": {"email": "taken@x.io"}, "objectWriteTraceId": "t1"},
        {"properties": {"bogus": "1"}, "objectWriteTraceId": "t2"},
    ]
    response = batch(api, "create", inputs)
    assert response.status_code == 207
    body = response.json()
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["t0"]
    assert body["numErrors"] == 2
    conflict, invalid = body["errors"]
    assert conflict["status"] == "error" and conflict["category"] == "CONFLICT"
    assert conflict["message"] == f"Contact already exists. Existing ID: {existing['id']}"
    assert conflict["context"] == {"objectWriteTraceId": ["t1"]}
    assert invalid["category"] == "VALIDATION_ERROR"
    assert invalid["context"]["objectWriteTraceId"] == ["t2"]
    assert invalid["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert len(live(api)) == 2


def test_batch_error_mode_switch(api: httpx.Client) -> None:
    api.post("/_sandbox/config", json={"batch_errors": "multi_status"}).raise_for_status()
    partial = batch(api, "create", [{"properties": {"email": "a@x.io"}}, {"properties": {"z": 1}}])
    assert partial.status_code == 207 and "context" not in partial.json()["errors"][0]
    api.post("/_sandbox/config", json={"batch_errors": "all_or_nothing"}).raise_for_status()
    traced = [
        {"properties": {"email": "b@x.io"}, "objectWriteTraceId": "1"},
        {"properties": {"z": 1}, "objectWriteTraceId": "2"},
    ]
    assert batch(api, "create", traced).status_code == 400
    assert [o["properties"]["email"] for o in live(api)] == ["a@x.io"]
    bad = api.post("/_sandbox/config", json={"batch_errors": "sometimes"})
    assert bad.status_code == 400


def test_batch_create_rejects_duplicates_within_the_batch(api: httpx.Client) -> None:
    inputs = [{"properties": {"email": "same@x.io"}}, {"properties": {"email": "SAME@x.io"}}]
    response = batch(api, "create", inputs)
    assert response.status_code == 409
    assert "Duplicate email in batch input" in response.json()["message"]
    assert live(api) == []


def test_batch_update_reports_missing_ids_per_input(api: httpx.Client) -> None:
    a, b = create(api, email="a@x.io"), create(api, email="b@x.io")
    ok = batch(api, "update", [{"id": a["id"], "properties": {"firstname": "A"}}])
    assert ok.status_code == 200 and ok.json()["results"][0]["properties"]["firstname"] == "A"
    response = batch(
        api,
        "update",
        [
            {"id": b["id"], "properties": {"firstname": "B"}},
            {"id": "777", "properties": {"firstname": "?"}},
            {"id": "778", "properties": {"firstname": "?"}},
        ],
    )
    assert response.status_code == 207
    body = response.json()
    assert [r["id"] for r in body["results"]] == [b["id"]]
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"] == {"ids": ["777", "778"]}
    duplicate = batch(api, "update", [{"id": a["id"], "properties": {}}] * 2)
    assert duplicate.status_code == 400
    invalid = batch(
        api,
        "update",
        [{"id": a["id"], "properties": {"lastname": "L"}}, {"id": b["id"], "properties": {"x": 1}}],
    )
    assert invalid.status_code == 400
    assert api.get(f"/crm/v3/objects/contacts/{a['id']}").json()["properties"]["lastname"] is None


def test_batch_upsert_creates_or_updates_by_unique_property(api: httpx.Client) -> None:
    existing = create(api, email="old@x.io", firstname="Old")
    response = batch(
        api,
        "upsert",
        [
            {"id": "OLD@x.io", "idProperty": "email", "properties": {"firstname": "Renewed"}},
            {"id": "new@x.io", "idProperty": "email", "properties": {"firstname": "New"}},
        ],
    )
    assert response.status_code == 200
    results = {r["properties"]["email"]: r for r in response.json()["results"]}
    assert results["old@x.io"]["new"] is False and results["old@x.io"]["id"] == existing["id"]
    assert results["old@x.io"]["properties"]["firstname"] == "Renewed"
    assert results["new@x.io"]["new"] is True
    by_name = batch(api, "upsert", [{"id": "X", "idProperty": "firstname", "properties": {}}])
    assert by_name.status_code == 400
    assert "non-unique 0-1 property firstname" in by_name.json()["message"]
    assert len(live(api)) == 2


def test_batch_archive_and_read(api: httpx.Client) -> None:
    a, b = create(api, email="a@x.io"), create(api, email="b@x.io")
    read = api.post(
        "/crm/v3/objects/contacts/batch/read",
        json={"inputs": [{"id": a["id"]}, {"id": "555"}], "properties": ["email"]},
    )
    assert read.status_code == 207
    assert [r["properties"]["email"] for r in read.json()["results"]] == ["a@x.io"]
    assert read.json()["errors"][0]["context"] == {"ids": ["555"]}
    by_email = api.post(
        "/crm/v3/objects/contacts/batch/read",
        json={"inputs": [{"id": "b@x.io"}], "idProperty": "email", "properties": []},
    )
    assert by_email.status_code == 200 and by_email.json()["results"][0]["id"] == b["id"]
    archived = batch(api, "archive", [{"id": a["id"]}, {"id": b["id"]}, {"id": "555"}])
    assert archived.status_code == 204
    assert live(api) == [] and len(live(api, archived=True)) == 2


# -- associations ---------------------------------------------------------------------


def test_associations_v4(api: httpx.Client) -> None:
    contact, company = create(api, email="a@x.io"), create(api, "companies", name="Acme")
    base = f"/crm/v4/objects/contacts/{contact['id']}/associations"
    put = api.put(f"{base}/default/companies/{company['id']}")
    assert put.status_code == 200
    specs = [
        (r["from"]["id"], r["to"]["id"], r["associationSpec"]["associationTypeId"])
        for r in put.json()["results"]
    ]
    assert specs == [(contact["id"], company["id"], 279), (company["id"], contact["id"], 280)]
    listed = api.get(f"{base}/companies").json()["results"]
    assert listed == [
        {
            "toObjectId": int(company["id"]),
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}],
        }
    ]
    reverse = api.get(f"/crm/v4/objects/companies/{company['id']}/associations/contacts").json()
    assert reverse["results"][0]["toObjectId"] == int(contact["id"])
    assert api.delete(f"{base}/companies/{company['id']}").status_code == 204
    assert api.get(f"{base}/companies").json()["results"] == []
    assert api.put(f"{base}/default/companies/999999").status_code == 404


def test_associations_to_archived_objects_are_hidden(api: httpx.Client) -> None:
    deal, contact = create(api, "deals", dealname="D"), create(api, email="a@x.io")
    api.put(f"/crm/v4/objects/deals/{deal['id']}/associations/default/contacts/{contact['id']}")
    api.delete(f"/crm/v3/objects/contacts/{contact['id']}")
    listed = api.get(f"/crm/v4/objects/deals/{deal['id']}/associations/contacts").json()
    assert listed["results"] == []


# -- rate limits, latency, faults -----------------------------------------------------


def test_ten_secondly_rate_limit(api: httpx.Client) -> None:
    config = {"rate_limit": {"max_requests": 2, "window_s": 0.3, "retry_after_s": 0.3}}
    api.post("/_sandbox/config", json=config).raise_for_status()
    first = api.get("/crm/v3/objects/contacts")
    assert first.headers["X-HubSpot-RateLimit-Max"] == "2"
    assert first.headers["X-HubSpot-RateLimit-Remaining"] == "1"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "300"
    api.get("/crm/v3/objects/contacts")
    limited = api.get("/crm/v3/objects/contacts")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "0.3"
    body = limited.json()
    assert body["status"] == "error"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["groupName"].startswith("public-api-private-app:")
    assert body["correlationId"] == limited.headers["X-HubSpot-Correlation-Id"]
    time.sleep(0.35)
    assert api.get("/crm/v3/objects/contacts").status_code == 200


def test_daily_rate_limit(api: httpx.Client) -> None:
    config = {"rate_limit": {"max_requests": 1, "window_s": 86400, "policy": "DAILY"}}
    api.post("/_sandbox/config", json=config).raise_for_status()
    assert api.get("/crm/v3/objects/contacts").headers["X-HubSpot-RateLimit-Daily"] == "1"
    limited = api.get("/crm/v3/objects/contacts")
    assert limited.status_code == 429
    assert limited.json()["policyName"] == "DAILY"
    assert "Retry-After" not in limited.headers


def test_latency_switch(api: httpx.Client) -> None:
    api.post("/_sandbox/config", json={"latency_ms": 150}).raise_for_status()
    started = time.monotonic()
    api.get("/crm/v3/objects/contacts")
    assert time.monotonic() - started >= 0.15
    assert api.get("/_sandbox/config").json()["latency_ms"] == 150


def test_fault_without_apply_changes_nothing(api: httpx.Client) -> None:
    fault = api.post(
        "/_sandbox/faults",
        json={
            "match": {"method": "POST", "path_regex": "/objects/contacts$"},
            "times": 2,
            "status": 503,
        },
    )
    assert fault.status_code == 201
    assert api.get("/_sandbox/faults").json()["results"][0]["remaining"] == 2
    assert api.get("/crm/v3/objects/contacts").status_code == 200  # not matched
    for _ in range(2):
        failed = api.post("/crm/v3/objects/contacts", json={"properties": {"email": "f@x.io"}})
        assert failed.status_code == 503
        assert failed.json()["category"] == "INTERNAL_ERROR"
        assert failed.json()["correlationId"] == failed.headers["X-HubSpot-Correlation-Id"]
    assert live(api) == []
    assert api.get("/_sandbox/faults").json()["results"] == []
    create(api, email="f@x.io")
    entries = log(api, method="POST")
    assert [e["status"] for e in entries] == [503, 503, 201]
    assert entries[0]["fault_id"] == fault.json()["id"] and entries[2]["fault_id"] is None


def test_fault_with_apply_takes_effect_then_fails(api: httpx.Client) -> None:
    api.post(
        "/_sandbox/faults",
        json={
            "match": {"path_regex": "/objects/contacts$"},
            "status": 500,
            "apply": True,
            "body": {"status": "error", "message": "boom", "category": "INTERNAL_ERROR"},
            "headers": {"X-Extra": "1"},
        },
    ).raise_for_status()
    failed = api.post("/crm/v3/objects/contacts", json={"properties": {"email": "g@x.io"}})
    assert failed.status_code == 500 and failed.headers["X-Extra"] == "1"
    assert failed.json()["message"] == "boom" and failed.json()["correlationId"]
    assert [o["properties"]["email"] for o in live(api)] == ["g@x.io"]


def test_fault_delay_lets_a_client_time_out_after_the_change(api: httpx.Client) -> None:
    api.post(
        "/_sandbox/faults",
        json={"match": {"method": "POST"}, "apply": True, "delay_ms": 600},
    ).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        api.post("/crm/v3/objects/contacts", json={"properties": {"email": "t@x.io"}}, timeout=0.2)
    assert [o["properties"]["email"] for o in live(api)] == ["t@x.io"]
    entry = log(api, method="POST")[0]
    assert entry["body"] == {"properties": {"email": "t@x.io"}}


def test_fault_validation(api: httpx.Client) -> None:
    assert api.post("/_sandbox/faults", json={"status": 200}).status_code == 400
    assert api.post("/_sandbox/faults", json={"match": {"path_regex": "("}}).status_code == 400
    assert api.post("/_sandbox/faults", json={"nonsense": 1}).status_code == 400
    api.post("/_sandbox/faults", json={"status": 500}).raise_for_status()
    assert api.delete("/_sandbox/faults").status_code == 204
    assert api.get("/crm/v3/objects/contacts").status_code == 200


# -- controls -------------------------------------------------------------------------


def test_request_log_records_what_the_vendor_received(api: httpx.Client) -> None:
    response = api.post("/crm/v3/objects/contacts?x=1", json={"properties": {"email": "l@x.io"}})
    api.get("/crm/v3/objects/contacts/1")
    entries = log(api)
    assert [(e["method"], e["status"]) for e in entries] == [("POST", 201), ("GET", 404)]
    first = entries[0]
    assert first["path"] == "/crm/v3/objects/contacts" and first["query"] == "x=1"
    assert first["body"] == {"properties": {"email": "l@x.io"}}
    assert first["correlation_id"] == response.headers["X-HubSpot-Correlation-Id"]
    assert ISO_MS.match(first["time"]) and first["seq"] < entries[1]["seq"]
    assert len(log(api, path_regex=r"/contacts/\d+$")) == 1
    assert api.delete("/_sandbox/requests").status_code == 204
    assert log(api) == []


def test_reset_restores_the_startup_state(api: httpx.Client) -> None:
    create(api, email="r@x.io")
    api.post("/crm/v3/properties/contacts", json=_prop("user_id"))
    api.post("/_sandbox/config", json={"latency_ms": 5})
    api.post("/_sandbox/faults", json={"status": 500, "match": {"path_regex": "never"}})
    assert api.post("/_sandbox/reset").status_code == 204
    assert live(api) == [] and log(api) == []
    assert api.get("/_sandbox/faults").json()["results"] == []
    assert api.get("/_sandbox/config").json()["latency_ms"] == 0
    assert api.get("/crm/v3/properties/contacts/user_id").status_code == 404
    assert api.get("/crm/v3/properties/pets/born").status_code == 200


def test_module_entry_point_serves_with_a_chosen_token() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "proxy.sandbox", "--port", str(port), "--token", "tok-123"]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/_sandbox/config")
                break
            except httpx.ConnectError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.05)
        ok = httpx.post(
            f"{url}/crm/v3/objects/contacts",
            json={"properties": {"email": "m@x.io"}},
            headers={"Authorization": "Bearer tok-123"},
        )
        assert ok.status_code == 201
        assert httpx.get(f"{url}/crm/v3/objects/contacts").status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
