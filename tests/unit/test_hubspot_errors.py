"""proxy.connectors.hubspot.errors: HubSpot error bodies to typed ApiErrors, and the
vendor-neutral ApiError (proxy.connectors.base) they become."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from proxy.connectors.base import (
    SQLSTATE,
    ApiError,
    ErrorKind,
    Operation,
    VendorCall,
)
from proxy.connectors.batches import plan_batches
from proxy.connectors.hubspot.errors import parse_error

EMBEDDED = "Property values were not valid: "


def test_duplicate_contact_names_email_and_the_existing_id() -> None:
    error = parse_error(
        409,
        {
            "status": "error",
            "message": "Contact already exists. Existing ID: 12345",
            "correlationId": "corr-1",
            "category": "CONFLICT",
        },
        object_type="contacts",
        correlation_id="header-id",
    )
    assert vars(error) == vars(
        ApiError(
            ErrorKind.DUPLICATE,
            "Contact already exists. Existing ID: 12345",
            http_status=409,
            vendor_request_id="corr-1",  # the body's id wins over the header's
            vendor_code="CONFLICT",
            column="email",
            existing_id="12345",
        )
    )
    assert error.sqlstate == "23505"


@pytest.mark.parametrize("object_type", ["contacts", "contact", "0-1"])
def test_contact_type_spellings_blame_email(object_type: str) -> None:
    error = parse_error(409, {"message": "Existing ID: 7"}, object_type=object_type)
    assert (error.column, error.existing_id) == ("email", "7")


def test_duplicate_of_other_objects_names_no_column() -> None:
    error = parse_error(
        409, {"message": "exists. Existing ID: 99", "category": "CONFLICT"}, object_type="companies"
    )
    assert (error.kind, error.column, error.existing_id) == (ErrorKind.DUPLICATE, None, "99")


def test_duplicate_with_a_named_property_keeps_it() -> None:
    body = {
        "message": "Existing ID: 5",
        "category": "CONFLICT",
        "context": {"propertyName": ["domain"]},
    }
    assert parse_error(409, body, object_type="contacts").column == "domain"


def test_property_error_from_the_errors_list() -> None:
    error = parse_error(
        400,
        {
            "message": "Property values were not valid",
            "category": "VALIDATION_ERROR",
            "errors": [
                {
                    "code": "PROPERTY_DOESNT_EXIST",
                    "message": 'Property "foo" does not exist',
                    "context": {"propertyName": ["foo"]},
                }
            ],
        },
        object_type="contacts",
        correlation_id="hdr",
    )
    assert error.kind is ErrorKind.UNKNOWN_PROPERTY
    assert (error.column, error.vendor_code) == ("foo", "PROPERTY_DOESNT_EXIST")
    assert error.message == 'Property "foo" does not exist'
    assert error.vendor_request_id == "hdr"
    assert error.sqlstate == "42703"


def test_several_property_errors_first_decides_messages_joined() -> None:
    error = parse_error(
        400,
        {
            "category": "VALIDATION_ERROR",
            "errors": [
                {
                    "code": "REQUIRED_PROPERTY",
                    "message": "name required",
                    "context": {"propertyName": ["name"]},
                },
                {"code": "INVALID_OPTION", "message": "bad option"},
            ],
        },
        object_type="deals",
    )
    assert (error.kind, error.column, error.vendor_code) == (
        ErrorKind.NOT_NULL,
        "name",
        "REQUIRED_PROPERTY",
    )
    assert error.message == "name required; bad option"


def test_property_errors_embedded_in_the_message() -> None:
    verdicts = [
        {
            "isValid": False,
            "message": "hs_object_id is read only",
            "error": "READ_ONLY_VALUE",
            "name": "hs_object_id",
        }
    ]
    error = parse_error(
        400,
        {"message": EMBEDDED + json.dumps(verdicts), "category": "VALIDATION_ERROR"},
        object_type="contacts",
    )
    assert error.kind is ErrorKind.READ_ONLY_PROPERTY
    assert (error.column, error.vendor_code) == ("hs_object_id", "READ_ONLY_VALUE")
    assert error.message == "hs_object_id is read only"
    assert error.sqlstate == "42501"


@pytest.mark.parametrize("tail", ["not json", "5", '{"a": 1}', '["x", 3]', ""])
def test_unparseable_embedded_errors_keep_the_message(tail: str) -> None:
    body = {"message": EMBEDDED + tail, "category": "VALIDATION_ERROR"}
    error = parse_error(400, body, object_type="contacts")
    assert error.kind is ErrorKind.INVALID_VALUE
    assert error.message == EMBEDDED + tail
    assert error.vendor_code == "VALIDATION_ERROR"


def test_issues_without_a_message_fall_back_to_their_code() -> None:
    error = parse_error(400, {"errors": ["junk", {"code": "INVALID_EMAIL"}]}, object_type="c")
    assert error.message == "INVALID_EMAIL"
    assert error.vendor_code == "INVALID_EMAIL"
    embedded = parse_error(
        400,
        {"message": EMBEDDED + json.dumps([{"error": "INVALID_DATE", "name": "born"}])},
        object_type="c",
    )
    assert (embedded.message, embedded.column) == ("INVALID_DATE", "born")


def test_unknown_property_code_is_an_invalid_value() -> None:
    body = {"errors": [{"code": "INVALID_INTEGER", "message": "not a number"}]}
    error = parse_error(400, body, object_type="contacts")
    assert (error.kind, error.vendor_code, error.message) == (
        ErrorKind.INVALID_VALUE,
        "INVALID_INTEGER",
        "not a number",
    )
    assert error.sqlstate == "23514"


def test_property_issues_do_not_override_a_status_kind() -> None:
    body = {"errors": [{"code": "REQUIRED_PROPERTY", "message": "x"}], "message": "nope"}
    error = parse_error(403, body, object_type="contacts")
    assert error.kind is ErrorKind.FORBIDDEN
    assert error.message == "nope"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, {}, ErrorKind.AUTH),
        (403, {}, ErrorKind.FORBIDDEN),
        (404, {}, ErrorKind.NOT_FOUND),
        (409, {}, ErrorKind.DUPLICATE),
        (423, {}, ErrorKind.UNAVAILABLE),
        (429, {}, ErrorKind.RATE_LIMITED),
        (400, {}, ErrorKind.INVALID_VALUE),
        (500, {}, ErrorKind.INVALID_VALUE),  # 5xx: the client decides retries
        (400, {"category": "OBJECT_NOT_FOUND"}, ErrorKind.NOT_FOUND),
        (400, {"category": "RATE_LIMITS"}, ErrorKind.RATE_LIMITED),
        (400, {"category": "INVALID_AUTHENTICATION"}, ErrorKind.AUTH),
        (400, {"category": "MISSING_SCOPES"}, ErrorKind.FORBIDDEN),
        (400, {"category": "CONFLICT"}, ErrorKind.DUPLICATE),
        (404, {"category": "SOMETHING_NEW"}, ErrorKind.NOT_FOUND),
    ],
)
def test_kind_by_category_then_status(
    status: int, body: Mapping[str, object], kind: ErrorKind
) -> None:
    error = parse_error(status, body, object_type="contacts")
    assert error.kind is kind
    assert error.http_status == status


def test_missing_message_says_the_status() -> None:
    error = parse_error(401, {}, object_type="contacts")
    assert error.message == "HubSpot answered HTTP 401"
    assert error.vendor_request_id is None
    assert error.vendor_code is None


# --- ApiError ---------------------------------------------------------------------


def test_every_kind_has_a_sqlstate() -> None:
    assert set(SQLSTATE) == set(ErrorKind)
    assert all(len(code) == 5 for code in SQLSTATE.values())


def test_api_error_detail_and_hint() -> None:
    error = ApiError(
        ErrorKind.RATE_LIMITED,
        "slow down",
        http_status=429,
        vendor_request_id="c-9",
        existing_id="77",
        input_index=2,
        applied=("1", "2"),
    )
    assert str(error) == "slow down"
    assert error.detail == (
        "Existing object id: 77. Failed row: 3. Left applied: 1, 2. HTTP 429. "
        "Vendor request id: c-9."
    )
    assert error.hint is not None and "safe to retry" in error.hint
    assert ApiError(ErrorKind.DUPLICATE, "x").detail == ""
    assert ApiError(ErrorKind.DUPLICATE, "x").hint is None


def test_for_row_names_the_row_and_what_stayed_applied() -> None:
    error = ApiError(ErrorKind.INVALID_VALUE, "bad")
    row = error.for_row(4, ["10"])
    assert (row.input_index, row.applied, row.retry_safe) == (4, ("10",), False)
    assert error.for_row(1).retry_safe
    assert not ApiError(ErrorKind.OUTCOME_UNKNOWN, "?", retry_safe=False).for_row(0).retry_safe
    assert error.input_index is None  # a copy, not a mutation


def test_plan_batches_split_and_number_inputs() -> None:
    inputs = [{"n": i} for i in range(250)]
    calls = list(plan_batches(Operation.CREATE, "contacts", inputs, 100))
    assert [len(c.inputs) for c in calls] == [100, 100, 50]
    assert [c.first_index for c in calls] == [0, 100, 200]
    assert calls[2].inputs[0] == {"n": 200}
    assert len({c.call_id for c in calls}) == 3
    assert calls[1].trace_id(5) == f"{calls[1].call_id}:105"
    assert list(plan_batches(Operation.ARCHIVE, "contacts", [], 100)) == []
    [single] = plan_batches(Operation.ARCHIVE, "deals", [{"id": "1"}], 100, compensation=True)
    assert single == VendorCall(
        Operation.ARCHIVE, "deals", ({"id": "1"},), 0, True, call_id=single.call_id
    )
