"""The Salesforce sandbox over real HTTP: OAuth, describe, rows, upsert, collections,
SOQL, validation, duplicate rules, limits, faults and the `/_sandbox/` controls."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from proxy.sandbox.salesforce import (
    CustomObjectSpec,
    FieldSpec,
    SalesforceSandboxConfig,
    ValidationRule,
    build_app,
)
from proxy.sandbox.server import BackgroundSandbox

TOKEN = "sandbox-sf-token"
V = "/services/data/v61.0"
SF_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
DEFAULTS = SalesforceSandboxConfig()
CONFIG = SalesforceSandboxConfig(
    custom_fields={
        **DEFAULTS.custom_fields,
        "Lead": [FieldSpec(name="Legacy_Id__c", type="string", length=20, external_id=True)],
    },
    custom_objects={
        "Invoice__c": CustomObjectSpec(
            fields=[
                FieldSpec(name="Total__c", type="currency", precision=10, scale=2),
                FieldSpec(name="Contact__c", type="reference", reference_to=["Contact"]),
                FieldSpec(name="Paid__c", type="boolean"),
            ],
            required=["Total__c"],
        )
    },
    validation_rules=[
        ValidationRule(
            object="Contact", field="Title", forbidden_regex="^CEO$", message="No CEOs here."
        )
    ],
)


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundSandbox]:
    with BackgroundSandbox(app=build_app(CONFIG), name="salesforce-sandbox") as running:
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


def create(api: httpx.Client, type_: str = "Contact", **fields: object) -> str:
    response = api.post(f"{V}/sobjects/{type_}/", json=fields)
    assert response.status_code == 201, response.text
    assert response.json()["success"] is True and response.json()["errors"] == []
    return str(response.json()["id"])


def rows(api: httpx.Client, type_: str = "Contact", deleted: bool = False) -> list[dict]:
    params = {"deleted": "true"} if deleted else {}
    return api.get(f"/_sandbox/objects/{type_}", params=params).json()["results"]


def soql(api: httpx.Client, q: str, endpoint: str = "query") -> dict:
    response = api.get(f"{V}/{endpoint}", params={"q": q})
    assert response.status_code == 200, response.text
    return response.json()


def collection(api: httpx.Client, method: str, records: list[dict], all_or_none: bool, path=""):
    body = {"allOrNone": all_or_none, "records": records}
    return api.request(method, f"{V}/composite/sobjects{path}", json=body)


def contact(**fields: object) -> dict:
    return {"attributes": {"type": "Contact"}, **fields}


def error_codes(result: dict) -> list[str]:
    return [e["statusCode"] for e in result["errors"]]


# -- ids, versions, auth ---------------------------------------------------------------


def test_ids_have_real_prefixes_and_case_safe_checksums(api: httpx.Client) -> None:
    from proxy.sandbox.salesforce.ids import to18

    assert to18("a0D30000001n7Pi") == "a0D30000001n7PiEAI"  # the documented example
    assert to18("a0D30000001n7PiEAA") is None  # wrong checksum
    contact_id = create(api, LastName="Id")
    account_id = create(api, "Account", Name="Acme")
    lead_id = create(api, "Lead", LastName="L", Company="C")
    opp_id = create(api, "Opportunity", Name="O", StageName="Prospecting", CloseDate="2026-01-01")
    invoice_id = create(api, "Invoice__c", Name="INV-1", Total__c=5)
    prefixes = [i[:3] for i in (contact_id, account_id, lead_id, opp_id, invoice_id)]
    assert prefixes == ["003", "001", "00Q", "006", "a00"]
    assert all(len(i) == 18 and to18(i[:15]) == i for i in (contact_id, invoice_id))
    by_15 = api.get(f"{V}/sobjects/Contact/{contact_id[:15]}")
    assert by_15.status_code == 200 and by_15.json()["Id"] == contact_id


def test_versions_list_and_unknown_version(server: BackgroundSandbox, api: httpx.Client) -> None:
    listed = httpx.get(f"{server.url}/services/data/")  # no auth needed
    assert listed.status_code == 200
    versions = [v["version"] for v in listed.json()]
    assert {"58.0", "59.0", "60.0", "61.0", "62.0"} <= set(versions)
    assert listed.json()[versions.index("61.0")]["url"] == "/services/data/v61.0"
    assert api.get("/services/data/v62.0/sobjects/").status_code == 200
    old = api.get("/services/data/v20.0/sobjects/")
    assert old.status_code == 404 and old.json() == NOT_FOUND


def test_calls_need_a_valid_bearer_token(server: BackgroundSandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = httpx.get(f"{server.url}{V}/sobjects/", headers=headers)
        assert response.status_code == 401
        assert response.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
    assert httpx.get(f"{server.url}/_sandbox/config").status_code == 200


def _refresh(server: BackgroundSandbox, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "client_id": "sandbox-client-id",
        "client_secret": "sandbox-client-secret",
        "refresh_token": "sandbox-refresh-token",
    } | overrides
    return httpx.post(f"{server.url}/services/oauth2/token", data=form)


def test_oauth_refresh_token_flow_issues_working_tokens(
    server: BackgroundSandbox, api: httpx.Client
) -> None:
    response = _refresh(server)
    assert response.status_code == 200
    body = response.json()
    assert body["instance_url"] == server.url
    assert body["token_type"] == "Bearer" and body["scope"] == "api refresh_token"
    assert re.match(r"^00D\w{12}!", body["access_token"])
    assert re.match(r"^https://login\.salesforce\.com/id/00D\w{15}/005\w{15}$", body["id"])
    assert body["issued_at"].isdigit() and abs(int(body["issued_at"]) / 1000 - time.time()) < 60
    digest = hmac.new(
        b"sandbox-client-secret", (body["id"] + body["issued_at"]).encode(), hashlib.sha256
    ).digest()
    assert body["signature"] == base64.b64encode(digest).decode()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    described = httpx.get(f"{body['instance_url']}{V}/sobjects/Contact/describe", headers=headers)
    assert described.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"client_id": "x"}, "invalid_client_id", "client identifier invalid"),
        ({"client_secret": "x"}, "invalid_client", "invalid client credentials"),
        ({"refresh_token": "x"}, "invalid_grant", "expired access/refresh token"),
        ({"grant_type": "password"}, "unsupported_grant_type", "grant type not supported"),
    ],
)
def test_oauth_errors(
    server: BackgroundSandbox, overrides: dict[str, str], error: str, description: str
) -> None:
    response = _refresh(server, **overrides)
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


def test_expire_tokens_invalidates_sessions(server: BackgroundSandbox, api: httpx.Client) -> None:
    issued = {"Authorization": f"Bearer {_refresh(server).json()['access_token']}"}
    url = f"{server.url}{V}/sobjects/"
    assert httpx.get(url, headers=issued).status_code == 200
    assert api.post("/_sandbox/expire_tokens").json() == {"expired": 1, "static": False}
    expired = httpx.get(url, headers=issued)
    assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert api.get(f"{V}/sobjects/").status_code == 200  # static tokens still work
    api.post("/_sandbox/expire_tokens", json={"static": True}).raise_for_status()
    assert api.get(f"{V}/sobjects/").status_code == 401
    fresh = {"Authorization": f"Bearer {_refresh(server).json()['access_token']}"}
    assert httpx.get(url, headers=fresh).status_code == 200
    api.post("/_sandbox/reset").raise_for_status()
    assert api.get(f"{V}/sobjects/").status_code == 200


def test_token_ttl_switch(server: BackgroundSandbox, api: httpx.Client) -> None:
    api.post("/_sandbox/config", json={"token_ttl_s": 0.2}).raise_for_status()
    headers = {"Authorization": f"Bearer {_refresh(server).json()['access_token']}"}
    assert httpx.get(f"{server.url}{V}/sobjects/", headers=headers).status_code == 200
    time.sleep(0.3)
    assert httpx.get(f"{server.url}{V}/sobjects/", headers=headers).status_code == 401


# -- describe ---------------------------------------------------------------------------


def test_global_describe_and_describe(api: httpx.Client) -> None:
    listing = api.get(f"{V}/sobjects/").json()
    assert listing["encoding"] == "UTF-8" and listing["maxBatchSize"] == 200
    by_name = {s["name"]: s for s in listing["sobjects"]}
    assert by_name["Contact"]["keyPrefix"] == "003" and by_name["Invoice__c"]["custom"] is True
    described = api.get(f"{V}/sobjects/contact/describe").json()
    assert described["name"] == "Contact" and described["keyPrefix"] == "003"
    assert described["createable"] and described["updateable"] and described["deletable"]
    assert described["urls"]["sobject"] == f"{V}/sobjects/Contact"
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["Id"]["type"] == "id" and not fields["Id"]["createable"]
    assert fields["LastName"]["nillable"] is False and fields["LastName"]["length"] == 80
    assert fields["Name"]["calculated"] and not fields["Name"]["createable"]
    assert fields["Email"]["type"] == "email" and fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["DoNotCall"]["defaultedOnCreate"] and fields["DoNotCall"]["type"] == "boolean"
    assert fields["CreatedDate"]["type"] == "datetime"
    assert fields["CreatedById"]["referenceTo"] == ["User"]
    user_id = fields["User_Id__c"]
    assert user_id["externalId"] and user_id["unique"] and user_id["length"] == 64
    assert user_id["custom"] and user_id["idLookup"]
    industry = {f["name"]: f for f in api.get(f"{V}/sobjects/Account/describe").json()["fields"]}[
        "Industry"
    ]
    assert industry["restrictedPicklist"] and industry["type"] == "picklist"
    assert {"value": "Banking", "label": "Banking", "active": True, "defaultValue": False} in (
        industry["picklistValues"]
    )
    status = {f["name"]: f for f in api.get(f"{V}/sobjects/Lead/describe").json()["fields"]}[
        "Status"
    ]
    assert [p["value"] for p in status["picklistValues"] if p["defaultValue"]] == [
        "Open - Not Contacted"
    ]
    invoice = {f["name"]: f for f in api.get(f"{V}/sobjects/Invoice__c/describe").json()["fields"]}
    assert invoice["Name"]["type"] == "string" and invoice["Total__c"]["scale"] == 2
    unknown = api.get(f"{V}/sobjects/Nope__c/describe")
    assert unknown.status_code == 404 and unknown.json() == NOT_FOUND


# -- rows ---------------------------------------------------------------------------------


def test_create_get_update_delete(api: httpx.Client) -> None:
    account_id = create(api, "Account", Name="Acme", AnnualRevenue="1000", Industry="Banking")
    contact_id = create(
        api, FirstName="Ada", LastName="Lovelace", Email="Ada@Example.com", AccountId=account_id
    )
    record = api.get(f"{V}/sobjects/Contact/{contact_id}").json()
    assert record["attributes"] == {
        "type": "Contact",
        "url": f"{V}/sobjects/Contact/{contact_id}",
    }
    assert record["Name"] == "Ada Lovelace" and record["Email"] == "Ada@Example.com"
    assert record["DoNotCall"] is False and record["Phone"] is None
    assert record["IsDeleted"] is False and SF_DATETIME.match(record["CreatedDate"])
    assert record["CreatedById"].startswith("005")
    chosen = api.get(f"{V}/sobjects/Contact/{contact_id}", params={"fields": "Email,Name"}).json()
    assert set(chosen) == {"attributes", "Id", "Email", "Name"}
    account = api.get(f"{V}/sobjects/Account/{account_id}").json()
    assert account["AnnualRevenue"] == 1000.0  # numeric strings bind to numbers

    time.sleep(0.002)
    updated = api.patch(
        f"{V}/sobjects/Contact/{contact_id}", json={"title": "CTO", "FirstName": None}
    )
    assert updated.status_code == 204 and updated.content == b""
    after = api.get(f"{V}/sobjects/Contact/{contact_id}").json()
    assert after["Title"] == "CTO" and after["FirstName"] is None and after["Name"] == "Lovelace"
    assert after["LastModifiedDate"] > record["LastModifiedDate"]

    assert api.delete(f"{V}/sobjects/Contact/{contact_id}").status_code == 204
    gone = api.get(f"{V}/sobjects/Contact/{contact_id}")
    assert gone.status_code == 404 and gone.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert gone.json()[0]["message"] == "entity is deleted"
    for call in (
        api.patch(f"{V}/sobjects/Contact/{contact_id}", json={"Title": "x"}),
        api.delete(f"{V}/sobjects/Contact/{contact_id}"),
    ):
        assert call.status_code == 404 and call.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert rows(api) == []
    assert [r["Id"] for r in rows(api, deleted=True)] == [contact_id]
    assert rows(api, deleted=True)[0]["IsDeleted"] is True


def test_missing_and_malformed_rows(api: httpx.Client) -> None:
    account_id = create(api, "Account", Name="Acme")
    for path in (f"Contact/{account_id}", "Contact/003Dn0000000000AAA"[:-3] + "AAA"):
        response = api.get(f"{V}/sobjects/{path}")
        assert response.status_code == 404
    assert api.get(f"{V}/sobjects/Contact/{account_id}").json() == NOT_FOUND
    bad = api.get(f"{V}/sobjects/Contact/xyz")
    assert bad.status_code == 404
    assert bad.json()[0]["message"] == (
        "Provided external ID field does not exist or is not accessible: xyz"
    )
    assert api.patch(f"{V}/sobjects/Contact/{account_id}", json={}).status_code == 404
    assert api.get(f"{V}/sobjects/Contact/{account_id[:15]}").status_code == 404
    assert api.put(f"{V}/sobjects/Account/{account_id}", json={}).json()[0]["errorCode"] == (
        "METHOD_NOT_ALLOWED"
    )


def test_upsert_by_external_id(api: httpx.Client) -> None:
    path = f"{V}/sobjects/Contact/User_Id__c/u-1"
    created = api.patch(path, json={"LastName": "One", "Email": "one@x.io"})
    assert created.status_code == 201
    body = created.json()
    assert body["created"] is True and body["success"] is True and body["errors"] == []
    assert body["id"].startswith("003")
    updated = api.patch(f"{V}/sobjects/Contact/user_id__c/U-1", json={"Title": "Boss"})
    assert updated.status_code == 200  # external ids match case-insensitively
    assert updated.json() == {"id": body["id"], "success": True, "errors": [], "created": False}
    [row] = rows(api)
    assert row["User_Id__c"] == "u-1" and row["Title"] == "Boss"
    by_ext = api.get(path, params={"fields": "Title"}).json()
    assert by_ext["Id"] == body["id"] and by_ext["Title"] == "Boss"

    not_ext = api.patch(f"{V}/sobjects/Contact/Email/a@b.io", json={"LastName": "x"})
    assert not_ext.status_code == 404
    assert not_ext.json() == [
        {
            "errorCode": "NOT_FOUND",
            "message": "Provided external ID field does not exist or is not accessible: Email",
        }
    ]
    invalid = api.patch(f"{V}/sobjects/Contact/User_Id__c/u-2", json={"Email": "bad"})
    assert invalid.status_code == 400
    assert invalid.json()[0]["errorCode"] == "INVALID_EMAIL_ADDRESS"

    # Legacy_Id__c is an external id without a unique index: two holders -> HTTP 300.
    for name in ("A", "B"):
        create(api, "Lead", LastName=name, Company="C", Legacy_Id__c="L-1")
    many = api.patch(f"{V}/sobjects/Lead/Legacy_Id__c/L-1", json={"Title": "x"})
    assert many.status_code == 300
    assert all(url.startswith(f"{V}/sobjects/Lead/00Q") for url in many.json())
    assert len(many.json()) == 2
    assert api.get(f"{V}/sobjects/Lead/Legacy_Id__c/L-1").status_code == 300
    assert api.delete(path).status_code == 204 and rows(api) == []
    assert api.get(path).status_code == 404


# -- validation -------------------------------------------------------------------------

LONG_TITLE = "t" * 129


@pytest.mark.parametrize(
    ("type_", "fields", "code", "message", "error_fields"),
    [
        ("Contact", {"LastName": "x", "Foo": 1}, "INVALID_FIELD",
         "No such column 'Foo' on sobject of type Contact", None),
        ("Contact", {"LastName": "x", "Name": "Full"}, "INVALID_FIELD_FOR_INSERT_UPDATE",
         "Unable to create/update fields: Name. Please check the security settings of this "
         "field and verify that it is read/write for your profile or permission set.", ["Name"]),
        ("Contact", {"FirstName": "x"}, "REQUIRED_FIELD_MISSING",
         "Required fields are missing: [LastName]", ["LastName"]),
        ("Lead", {"FirstName": "x"}, "REQUIRED_FIELD_MISSING",
         "Required fields are missing: [LastName, Company]", ["LastName", "Company"]),
        ("Contact", {"LastName": "x", "Email": "x"}, "INVALID_EMAIL_ADDRESS",
         "Email: invalid email address: x", ["Email"]),
        ("Contact", {"LastName": "x", "Title": LONG_TITLE}, "STRING_TOO_LONG",
         f"Title: data value too large: {LONG_TITLE} (max length=128)", ["Title"]),
        ("Account", {"Name": "x", "NumberOfEmployees": "many"}, "JSON_PARSER_ERROR",
         "Cannot deserialize instance of int from VALUE_STRING value many or request may be "
         "missing a required field", None),
        ("Contact", {"LastName": "x", "Birthdate": "2024-13-01"}, "JSON_PARSER_ERROR",
         "Cannot deserialize instance of date from VALUE_STRING value 2024-13-01 or request "
         "may be missing a required field", None),
        ("Contact", {"LastName": "x", "DoNotCall": "yes"}, "JSON_PARSER_ERROR",
         "Cannot deserialize instance of boolean from VALUE_STRING value yes or request may "
         "be missing a required field", None),
        ("Account", {"Name": "x", "Industry": "Piracy"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
         "Industry: bad value for restricted picklist field: Piracy", ["Industry"]),
        ("Account", {"Name": "x", "NumberOfEmployees": 10**9}, "NUMBER_OUTSIDE_VALID_RANGE",
         "Employees: value outside of valid range on numeric field: 1000000000",
         ["NumberOfEmployees"]),
        ("Contact", {"LastName": "x", "AccountId": "nope"}, "MALFORMED_ID",
         "Account ID: id value of incorrect type: nope", ["AccountId"]),
        ("Contact", {"LastName": "x", "AccountId": "001Dn0000000001"},
         "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["AccountId"]),
        ("Contact", {"LastName": "x", "AccountId": "003Dn0000000001"}, "FIELD_INTEGRITY_EXCEPTION",
         "Account ID: id value of incorrect type: 003Dn0000000001", ["AccountId"]),
        ("Contact", {"LastName": "x", "Title": "CEO"}, "FIELD_CUSTOM_VALIDATION_EXCEPTION",
         "No CEOs here.", ["Title"]),
    ],
)  # fmt: skip
def test_single_record_validation_errors(
    api: httpx.Client,
    type_: str,
    fields: dict,
    code: str,
    message: str,
    error_fields: list[str] | None,
) -> None:
    response = api.post(f"{V}/sobjects/{type_}/", json=fields)
    assert response.status_code == 400, response.text
    expected: dict[str, object] = {"message": message, "errorCode": code}
    if error_fields is not None:
        expected["fields"] = error_fields
    assert response.json() == [expected]
    assert rows(api, type_) == []


def test_update_rules_references_and_values(api: httpx.Client) -> None:
    contact_id = create(api, LastName="x", Birthdate="1990-05-01")
    cleared = api.patch(f"{V}/sobjects/Contact/{contact_id}", json={"LastName": None})
    assert cleared.json()[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    account_id = create(api, "Account", Name="Gone")
    api.delete(f"{V}/sobjects/Account/{account_id}").raise_for_status()
    to_deleted = api.patch(f"{V}/sobjects/Contact/{contact_id}", json={"AccountId": account_id})
    assert to_deleted.json() == [
        {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": ["AccountId"]}
    ]
    invoice_id = create(
        api, "Invoice__c", Name="I", Total__c=12.345, Contact__c=contact_id[:15], Paid__c="true"
    )
    invoice = rows(api, "Invoice__c")[0]
    assert invoice["Id"] == invoice_id and invoice["Total__c"] == 12.35
    assert invoice["Contact__c"] == contact_id and invoice["Paid__c"] is True
    opp = create(
        api, "Opportunity", Name="O", StageName="Closed Won", CloseDate="2026-02-03", Amount=5
    )
    assert api.get(f"{V}/sobjects/Opportunity/{opp}").json()["CloseDate"] == "2026-02-03"
    lead_id = create(api, "Lead", LastName="L", Company="C")
    assert rows(api, "Lead")[0]["Status"] == "Open - Not Contacted" and lead_id


def test_unique_external_id_rejects_duplicates(api: httpx.Client) -> None:
    first = create(api, LastName="a", User_Id__c="U-9")
    response = api.post(f"{V}/sobjects/Contact/", json={"LastName": "b", "User_Id__c": "u-9"})
    assert response.status_code == 400
    assert response.json() == [
        {
            "message": f"duplicate value found: User_Id__c duplicates value on record with id: "
            f"{first}",
            "errorCode": "DUPLICATE_VALUE",
            "fields": [],
        }
    ]


def test_duplicate_rules_match_contacts_and_leads_by_email(api: httpx.Client) -> None:
    lead_id = create(api, "Lead", LastName="L", Company="C", Email="Dup@x.io")
    response = api.post(f"{V}/sobjects/Contact/", json={"LastName": "c", "Email": "dup@X.io"})
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == "DUPLICATES_DETECTED"
    assert error["message"] == "Use one of these records?"
    result = error["duplicateResult"]
    assert result["allowSave"] is False and result["duplicateRuleEntityType"] == "Contact"
    [match] = result["matchResults"]
    assert match["entityType"] == "Lead" and match["size"] == 1
    assert match["matchRecords"][0]["record"]["Id"] == lead_id
    header = {"Sforce-Duplicate-Rule-Header": "allowSave=true"}
    allowed = api.post(f"{V}/sobjects/Contact/", json={"LastName": "c", "Email": "dup@x.io"},
                       headers=header)  # fmt: skip
    assert allowed.status_code == 201
    api.post("/_sandbox/config", json={"duplicate_rules": False}).raise_for_status()
    create(api, LastName="d", Email="DUP@x.io")
    assert len(rows(api)) == 2


# -- collections --------------------------------------------------------------------------


def test_collection_create_partial_success_in_order(api: httpx.Client) -> None:
    records = [
        contact(LastName="a", Email="a@x.io"),
        contact(FirstName="no last name"),
        {"attributes": {"type": "Account"}, "Name": "Acme"},
        contact(LastName="d", Email="bad"),
    ]
    response = collection(api, "POST", records, all_or_none=False)
    assert response.status_code == 200
    results = response.json()
    assert [r["success"] for r in results] == [True, False, True, False]
    assert results[0]["id"].startswith("003") and results[2]["id"].startswith("001")
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [LastName]",
                "fields": ["LastName"],
            }
        ],
    }
    assert error_codes(results[3]) == ["INVALID_EMAIL_ADDRESS"]
    assert [r["LastName"] for r in rows(api)] == ["a"]
    assert len(rows(api, "Account")) == 1


def test_collection_all_or_none_rolls_everything_back(api: httpx.Client) -> None:
    existing = create(api, LastName="keep", Title="Old")
    updates = [
        contact(Id=existing, Title="New"),
        contact(Id=existing, Title="CEO"),  # violates the validation rule
    ]
    response = collection(api, "PATCH", updates, all_or_none=True)
    results = response.json()
    assert response.status_code == 200
    assert results[0] == {
        "success": False,
        "errors": [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the "
                "request was using AllOrNone header",
                "fields": [],
            }
        ],
    }
    assert error_codes(results[1]) == ["FIELD_CUSTOM_VALIDATION_EXCEPTION"]
    assert rows(api)[0]["Title"] == "Old"
    created = collection(api, "POST", [contact(LastName="n1"), contact()], all_or_none=True)
    assert [error_codes(r) for r in created.json()] == [
        ["ALL_OR_NONE_OPERATION_ROLLED_BACK"],
        ["REQUIRED_FIELD_MISSING"],
    ]
    assert len(rows(api)) == 1
    ok = collection(api, "POST", [contact(LastName="n1"), contact(LastName="n2")], True)
    assert all(r["success"] for r in ok.json()) and len(rows(api)) == 3


def test_collection_update_upsert_and_delete(api: httpx.Client) -> None:
    first, second = create(api, LastName="a"), create(api, LastName="b")
    updates = [
        contact(Id=second, Title="T2"),
        contact(Title="no id"),
        contact(Id="003Dn0000000001", Title="missing"),
        contact(Id="bogus", Title="bad id"),
    ]
    results = collection(api, "PATCH", updates, all_or_none=False).json()
    assert results[0] == {"id": second, "success": True, "errors": []}
    assert [error_codes(r) for r in results[1:]] == [
        ["MISSING_ARGUMENT"],
        ["INVALID_CROSS_REFERENCE_KEY"],
        ["MALFORMED_ID"],
    ]
    upserts = [
        contact(User_Id__c="u-1", LastName="new"),
        contact(User_Id__c="u-2", LastName="other"),
        contact(LastName="no key"),
    ]
    api.patch(f"{V}/sobjects/Contact/{first}", json={"User_Id__c": "u-2"}).raise_for_status()
    upserted = collection(api, "PATCH", upserts, False, "/Contact/User_Id__c").json()
    assert upserted[0]["created"] is True and upserted[0]["success"] is True
    assert upserted[1] == {"id": first, "success": True, "errors": [], "created": False}
    assert upserted[2]["success"] is False and upserted[2]["created"] is False
    assert error_codes(upserted[2]) == ["MISSING_ARGUMENT"]
    assert {r["LastName"] for r in rows(api)} == {"new", "other", "b"}

    ids = f"{first},{first[:3]}Dn0000000001,{second}"
    deleted = api.delete(f"{V}/composite/sobjects", params={"ids": ids, "allOrNone": "true"})
    assert [r["success"] for r in deleted.json()] == [False, False, False]
    assert len(rows(api)) == 3
    deleted = api.delete(f"{V}/composite/sobjects", params={"ids": ids, "allOrNone": "false"})
    assert deleted.json()[0] == {"id": first, "success": True, "errors": []}
    assert error_codes(deleted.json()[1]) == ["INVALID_CROSS_REFERENCE_KEY"]
    again = api.delete(f"{V}/composite/sobjects", params={"ids": first}).json()
    assert error_codes(again[0]) == ["ENTITY_IS_DELETED"]
    assert [r["LastName"] for r in rows(api)] == ["new"]


def test_collection_request_level_errors(api: httpx.Client) -> None:
    too_many = collection(api, "POST", [contact(LastName=str(i)) for i in range(201)], False)
    assert too_many.status_code == 400
    assert too_many.json() == [
        {
            "message": "record limit reached. cannot submit more than 200 records into this call",
            "errorCode": "EXCEEDED_ID_LIMIT",
        }
    ]
    exactly = collection(api, "POST", [contact(LastName=str(i)) for i in range(200)], True)
    assert exactly.status_code == 200 and len(rows(api)) == 200
    unknown = collection(api, "POST", [contact(LastName="x", Nope__c=1)], False)
    assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALID_FIELD"
    untyped = collection(api, "POST", [{"LastName": "x"}], False)
    assert untyped.json() == [
        {"message": "Must send a concrete entity type.", "errorCode": "INVALID_TYPE"}
    ]
    not_json = api.post(f"{V}/composite/sobjects", content=b"{nope")
    assert not_json.status_code == 400 and not_json.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    ids = ",".join(["003Dn0000000001"] * 201)
    assert api.delete(f"{V}/composite/sobjects", params={"ids": ids}).status_code == 400
    assert len(rows(api)) == 200


def test_collection_retrieve(api: httpx.Client) -> None:
    first, second = create(api, LastName="a", Email="a@x.io"), create(api, LastName="b")
    api.delete(f"{V}/sobjects/Contact/{second}").raise_for_status()
    ids = [first, second, "003Dn0000000001", "junk"]
    got = api.get(
        f"{V}/composite/sobjects/Contact", params={"ids": ",".join(ids), "fields": "Email,Name"}
    )
    assert got.status_code == 200
    assert got.json() == [
        {
            "attributes": {"type": "Contact", "url": f"{V}/sobjects/Contact/{first}"},
            "Id": first,
            "Email": "a@x.io",
            "Name": "a",
        },
        None,
        None,
        None,
    ]
    posted = api.post(f"{V}/composite/sobjects/Contact", json={"ids": ids, "fields": ["Id"]})
    assert [r and r["Id"] for r in posted.json()] == [first, None, None, None]
    bad = api.get(f"{V}/composite/sobjects/Contact", params={"ids": first, "fields": "Nope"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"


# -- SOQL ---------------------------------------------------------------------------------


def test_query_subset(api: httpx.Client) -> None:
    account = create(api, "Account", Name="Acme", NumberOfEmployees=50)
    create(api, FirstName="Ada", LastName="Lovelace", Email="ADA@x.io", AccountId=account)
    create(api, FirstName="Bob", LastName="O'Brien", Email="bob@x.io", Title="CTO")
    create(api, LastName="Cy", DoNotCall=True)
    by_email = soql(api, "SELECT Id, Email FROM Contact WHERE Email = 'ada@X.IO'")
    assert by_email["totalSize"] == 1 and by_email["done"] is True
    assert set(by_email["records"][0]) == {"attributes", "Id", "Email"}
    names = lambda q: [r["LastName"] for r in soql(api, q)["records"]]  # noqa: E731
    assert names("SELECT LastName FROM Contact ORDER BY LastName DESC") == [
        "O'Brien", "Lovelace", "Cy"
    ]  # fmt: skip
    assert names("select lastname from contact where lastname = 'O\\'Brien'") == ["O'Brien"]
    assert names("SELECT LastName FROM Contact WHERE Title = null ORDER BY LastName") == [
        "Cy", "Lovelace"
    ]  # fmt: skip
    assert names("SELECT LastName FROM Contact WHERE Title != null") == ["O'Brien"]
    assert names("SELECT LastName FROM Contact WHERE DoNotCall = true") == ["Cy"]
    assert names(
        "SELECT LastName FROM Contact WHERE FirstName IN ('ada', 'BOB') ORDER BY LastName LIMIT 1"
    ) == ["Lovelace"]
    assert names("SELECT LastName FROM Contact WHERE LastName NOT IN ('Cy') ORDER BY LastName") == [
        "Lovelace", "O'Brien"
    ]  # fmt: skip
    assert names("SELECT LastName FROM Contact WHERE Email LIKE '%@x.%' ORDER BY Email") == [
        "Lovelace", "O'Brien"
    ]  # fmt: skip
    assert names(
        "SELECT LastName FROM Contact "
        "WHERE (LastName = 'Cy' OR Title = 'CTO') AND DoNotCall = false"
    ) == ["O'Brien"]
    assert names(f"SELECT LastName FROM Contact WHERE AccountId = '{account[:15]}'") == ["Lovelace"]
    assert names("SELECT LastName FROM Contact WHERE CreatedDate >= 2020-01-01T00:00:00Z "
                 "ORDER BY LastName LIMIT 2 OFFSET 1") == ["Lovelace", "O'Brien"]  # fmt: skip
    assert names("SELECT LastName FROM Contact WHERE CreatedDate < 2020-01-01T00:00:00Z") == []
    accounts = soql(api, "SELECT Name FROM Account WHERE NumberOfEmployees > 10")
    assert [r["Name"] for r in accounts["records"]] == ["Acme"]
    assert soql(api, "SELECT COUNT() FROM Contact") == {
        "totalSize": 3, "done": True, "records": []
    }  # fmt: skip


@pytest.mark.parametrize(
    ("q", "code"),
    [
        ("SELECT FROM Contact", "MALFORMED_QUERY"),
        ("SELECT Id Contact", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE LastName = 'a' AND Email = 'b' OR Title = 'c'",
         "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact LIMIT x", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Contact WHERE Nope = 1", "INVALID_FIELD"),
        ("SELECT Id FROM Contact WHERE LastName = 5", "INVALID_FIELD"),
        ("SELECT Id FROM Contact ORDER BY Nope", "INVALID_FIELD"),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
    ],
)  # fmt: skip
def test_query_errors(api: httpx.Client, q: str, code: str) -> None:
    response = api.get(f"{V}/query", params={"q": q})
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == code and error["message"]


def test_query_all_sees_the_recycle_bin(api: httpx.Client) -> None:
    kept, dropped = create(api, LastName="kept"), create(api, LastName="dropped")
    api.delete(f"{V}/sobjects/Contact/{dropped}").raise_for_status()
    q = "SELECT Id, IsDeleted FROM Contact ORDER BY LastName"
    assert [r["Id"] for r in soql(api, q)["records"]] == [kept]
    everything = soql(api, q, "queryAll")["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in everything] == [(dropped, True), (kept, False)]
    deleted_only = soql(api, "SELECT Id FROM Contact WHERE IsDeleted = true", "queryAll/")
    assert [r["Id"] for r in deleted_only["records"]] == [dropped]


# -- limits, latency, faults ------------------------------------------------------------


def test_rate_limit_and_usage_header(api: httpx.Client) -> None:
    usage = api.get(f"{V}/sobjects/").headers["Sforce-Limit-Info"]
    assert re.match(r"^api-usage=\d+/100000$", usage)
    api.post("/_sandbox/config", json={"rate_limit": {"max_requests": 2, "window_s": 60}})
    assert api.get(f"{V}/sobjects/").headers["Sforce-Limit-Info"] == "api-usage=1/2"
    assert api.get(f"{V}/sobjects/").headers["Sforce-Limit-Info"] == "api-usage=2/2"
    refused = api.get(f"{V}/sobjects/")
    assert refused.status_code == 403
    assert refused.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=2/2"


def test_latency_switch(api: httpx.Client) -> None:
    api.post("/_sandbox/config", json={"latency_ms": 150}).raise_for_status()
    started = time.monotonic()
    api.get(f"{V}/sobjects/").raise_for_status()
    assert time.monotonic() - started >= 0.15
    bad = api.post("/_sandbox/config", json={"latency_ms": -1})
    assert bad.status_code == 400


def test_faults_default_bodies_and_row_locks(api: httpx.Client) -> None:
    api.post("/_sandbox/faults", json={"status": 503, "match": {"method": "GET"}})
    unavailable = api.get(f"{V}/sobjects/")
    assert unavailable.status_code == 503
    assert unavailable.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert api.get(f"{V}/sobjects/").status_code == 200  # used up
    api.post(
        "/_sandbox/faults",
        json={"status": 400, "body": {"errorCode": "UNABLE_TO_LOCK_ROW"}, "times": 2},
    ).raise_for_status()
    assert api.get("/_sandbox/faults").json()["results"][0]["remaining"] == 2
    locked = api.post(f"{V}/sobjects/Contact/", json={"LastName": "x"})
    assert locked.status_code == 400
    assert locked.json() == [
        {
            "message": "unable to obtain exclusive access to this record",
            "errorCode": "UNABLE_TO_LOCK_ROW",
        }
    ]
    api.post(f"{V}/sobjects/Contact/", json={"LastName": "x"})
    assert rows(api) == [] and api.get("/_sandbox/faults").json()["results"] == []
    custom = [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}]
    api.post("/_sandbox/faults", json={"status": 500, "body": custom, "headers": {"X-A": "1"}})
    failed = api.get(f"{V}/sobjects/")
    assert failed.json() == custom and failed.headers["X-A"] == "1"
    api.post("/_sandbox/faults", json={"status": 400, "match": {"path_regex": "oauth2"},
                                       "body": {"error": "invalid_grant"}})  # fmt: skip
    token = api.post("/services/oauth2/token", data={"grant_type": "refresh_token"})
    assert token.status_code == 400 and token.json() == {"error": "invalid_grant"}
    entries = api.get("/_sandbox/requests").json()["results"]
    assert entries[0]["fault_id"] is not None and entries[1]["fault_id"] is None


def test_fault_with_apply_takes_effect_then_fails(api: httpx.Client) -> None:
    api.post(
        "/_sandbox/faults",
        json={"status": 500, "apply": True, "match": {"path_regex": "/composite/sobjects$"}},
    ).raise_for_status()
    response = collection(api, "POST", [contact(LastName="applied")], True)
    assert response.status_code == 500
    assert response.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    assert [r["LastName"] for r in rows(api)] == ["applied"]


def test_fault_delay_lets_a_client_time_out_after_the_change(api: httpx.Client) -> None:
    api.post(
        "/_sandbox/faults", json={"match": {"method": "PATCH"}, "apply": True, "delay_ms": 500}
    ).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        api.patch(f"{V}/sobjects/Contact/User_Id__c/t-1", json={"LastName": "t"}, timeout=0.2)
    assert [r["User_Id__c"] for r in rows(api)] == ["t-1"]


# -- controls -----------------------------------------------------------------------------


def test_request_log_and_request_ids(api: httpx.Client) -> None:
    response = api.post(f"{V}/sobjects/Contact/?x=1", json={"LastName": "log"})
    api.get(f"{V}/sobjects/Contact/003Dn0000000001")
    entries = api.get("/_sandbox/requests").json()["results"]
    assert [(e["method"], e["status"]) for e in entries] == [("POST", 201), ("GET", 404)]
    first = entries[0]
    assert first["path"] == f"{V}/sobjects/Contact/" and first["query"] == "x=1"
    assert first["body"] == {"LastName": "log"} and first["seq"] < entries[1]["seq"]
    assert first["correlation_id"] == response.headers["X-Request-Id"]
    assert re.match(r"^\d{4}-\d{2}-\d{2}T.*Z$", first["time"])
    filtered = api.get("/_sandbox/requests", params={"method": "GET"}).json()["results"]
    assert len(filtered) == 1
    assert api.delete("/_sandbox/requests").status_code == 204
    assert api.get("/_sandbox/requests").json()["results"] == []


def test_reset_restores_the_startup_state(api: httpx.Client) -> None:
    create(api, LastName="r")
    api.post("/_sandbox/config", json={"latency_ms": 5, "duplicate_rules": False})
    api.post("/_sandbox/faults", json={"status": 500, "match": {"path_regex": "never"}})
    assert api.post("/_sandbox/reset").status_code == 204
    assert rows(api) == [] and api.get("/_sandbox/requests").json()["results"] == []
    assert api.get("/_sandbox/faults").json()["results"] == []
    assert api.get("/_sandbox/config").json() == {
        "latency_ms": 0.0,
        "rate_limit": None,
        "duplicate_rules": True,
        "token_ttl_s": 7200.0,
    }


def test_module_entry_point_serves_with_a_chosen_token() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "proxy.sandbox.salesforce", "--port", str(port), "--token", "t1"]
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
            f"{url}{V}/sobjects/Contact/",
            json={"LastName": "cli"},
            headers={"Authorization": "Bearer t1"},
        )
        assert ok.status_code == 201
        assert httpx.get(f"{url}{V}/sobjects/").status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
