"""The Salesforce connector's pure logic: names (snake_case ↔ API names), the table
mapping from a describe, error bodies -> SQLSTATEs, typed values, SOQL literals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from proxy.connectors.base import ApiError, ErrorKind
from proxy.connectors.mapping import MappingError, TableShape
from proxy.connectors.salesforce import codec, soql
from proxy.connectors.salesforce.errors import from_entries, parse_errors, record_error
from proxy.connectors.salesforce.naming import find_name, map_object, snake


@pytest.mark.parametrize(
    ("api", "column"),
    [
        ("FirstName", "first_name"),
        ("AccountId", "account_id"),
        ("User_Id__c", "user_id__c"),
        ("NumberOfEmployees", "number_of_employees"),
        ("SystemModstamp", "system_modstamp"),
        ("IsDeleted", "is_deleted"),
        ("SLAExpirationDate__c", "sla_expiration_date__c"),
        ("Invoice__c", "invoice__c"),
        ("Id", "id"),
    ],
)
def test_snake(api: str, column: str) -> None:
    assert snake(api) == column
    assert find_name(column, ["Name", api, "Other__c"]) == api


def test_find_name_prefers_the_exact_name_and_refuses_ambiguity() -> None:
    assert find_name("contact", ["Account", "Contact"]) == "Contact"
    assert find_name("CONTACT", ["Contact"]) == "Contact"
    assert find_name("opportunitylineitem", ["OpportunityLineItem"]) == "OpportunityLineItem"
    assert find_name("nope", ["Contact"]) is None
    assert find_name("a_b", ["AB", "A_B__x"]) == "AB"  # snake_case before loose


DESCRIBE = {
    "createable": True,
    "deletable": False,
    "fields": [
        {"name": "Id", "createable": False, "updateable": False},
        {"name": "FirstName", "createable": True, "updateable": True},
        {"name": "LastName", "createable": True, "updateable": True},
        {"name": "Name", "createable": False, "updateable": False, "calculated": True},
        {"name": "CreatedDate", "createable": False, "updateable": False},
        {"name": "User_Id__c", "createable": True, "updateable": True, "externalId": True},
        {"name": "Source__c", "createable": True, "updateable": False},
    ],
}


def shape(*columns: str, **options: object) -> TableShape:
    return TableShape("salesforce", "contact", tuple((c, "text") for c in columns), **options)  # type: ignore[arg-type]


def test_map_object_from_the_describe() -> None:
    mapping = map_object(
        shape("first_name", "last_name", "name", "created_date", "user_id__c", "source__c"),
        "Contact",
        DESCRIBE,
    )
    assert mapping.object_type == "Contact"
    assert mapping.properties == {
        "first_name": "FirstName",
        "last_name": "LastName",
        "user_id__c": "User_Id__c",
        "source__c": "Source__c",
    }
    assert mapping.read_only == {"name", "created_date"}
    assert mapping.read_only_properties == {"name": "Name", "created_date": "CreatedDate"}
    assert mapping.upsert_keys == {"user_id__c"}
    assert mapping.capabilities.immutable == {"source__c"}
    assert not mapping.capabilities.delete and mapping.capabilities.create


def test_map_object_refuses_unknown_columns_and_non_external_upsert_keys() -> None:
    with pytest.raises(MappingError, match="column favourite_colour matches no field"):
        map_object(shape("first_name", "favourite_colour"), "Contact", DESCRIBE)
    with pytest.raises(MappingError, match="upsert key last_name is not an external id"):
        map_object(shape("last_name", upsert_keys=("last_name",)), "Contact", DESCRIBE)
    renamed = map_object(shape("given", renames={"given": "FirstName"}), "Contact", DESCRIBE)
    assert renamed.properties == {"given": "FirstName"}


@pytest.mark.parametrize(
    ("code", "kind", "sqlstate"),
    [
        ("DUPLICATES_DETECTED", ErrorKind.DUPLICATE, "23505"),
        ("DUPLICATE_VALUE", ErrorKind.DUPLICATE, "23505"),
        ("REQUIRED_FIELD_MISSING", ErrorKind.NOT_NULL, "23502"),
        ("INVALID_EMAIL_ADDRESS", ErrorKind.INVALID_VALUE, "23514"),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", ErrorKind.INVALID_VALUE, "23514"),
        ("STRING_TOO_LONG", ErrorKind.INVALID_VALUE, "23514"),
        ("INVALID_FIELD", ErrorKind.UNKNOWN_PROPERTY, "42703"),
        ("INVALID_FIELD_FOR_INSERT_UPDATE", ErrorKind.READ_ONLY_PROPERTY, "42501"),
        ("INVALID_CROSS_REFERENCE_KEY", ErrorKind.FOREIGN_KEY, "23503"),
        ("ENTITY_IS_DELETED", ErrorKind.NOT_FOUND, "P0002"),
        ("NOT_FOUND", ErrorKind.NOT_FOUND, "P0002"),
        ("INVALID_SESSION_ID", ErrorKind.AUTH, "28000"),
        ("REQUEST_LIMIT_EXCEEDED", ErrorKind.RATE_LIMITED, "53400"),
        ("UNABLE_TO_LOCK_ROW", ErrorKind.LOCKED, "55P03"),
    ],
)
def test_error_codes_map_to_sqlstates(code: str, kind: ErrorKind, sqlstate: str) -> None:
    error = parse_errors(400, [{"message": "m", "errorCode": code, "fields": ["Email"]}])
    assert (error.kind, error.sqlstate, error.vendor_code, error.column) == (
        kind,
        sqlstate,
        code,
        "Email",
    )


def test_duplicates_name_the_existing_record() -> None:
    duplicate = {"matchResults": [{"matchRecords": [{"record": {"Id": "003000000000001AAA"}}]}]}
    error = from_entries(
        400,
        [
            {
                "errorCode": "DUPLICATES_DETECTED",
                "message": "Use one of these records?",
                "duplicateResult": duplicate,
            }
        ],
    )
    assert error.existing_id == "003000000000001AAA"
    unique = parse_errors(
        400,
        [
            {
                "errorCode": "DUPLICATE_VALUE",
                "fields": [],
                "message": "duplicate value found: User_Id__c duplicates value on record with id: "
                "003000000000002AAA",
            }
        ],
    )
    assert unique.existing_id == "003000000000002AAA"


def test_collection_record_errors_and_rolled_back_ones() -> None:
    cause = record_error(
        {
            "success": False,
            "errors": [
                {"statusCode": "STRING_TOO_LONG", "message": "too long", "fields": ["Title"]}
            ],
        },
        200,
    )
    rolled = record_error(
        {
            "success": False,
            "errors": [
                {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back"}
            ],
        },
        200,
    )
    assert (cause.kind, cause.column, cause.consequential) == (
        ErrorKind.INVALID_VALUE,
        "Title",
        False,
    )
    assert rolled.consequential


def test_oauth_and_odd_bodies() -> None:
    oauth = parse_errors(400, {"error": "invalid_grant", "error_description": "expired"})
    assert oauth.message == "expired"
    assert parse_errors(401, []).kind is ErrorKind.AUTH
    assert parse_errors(503, "down").message == "Salesforce answered HTTP 503"


def test_codec_keeps_types_and_exact_numbers() -> None:
    row = {
        "A": Decimal("12345678901234567890.123"),
        "B": True,
        "C": None,
        "D": "x",
        "E": ["a", "b"],
        "F": 0.1,
    }
    created = codec.encode_fields(row, clearing=False)
    assert created == {
        "A": Decimal("12345678901234567890.123"),
        "B": True,
        "D": "x",
        "E": "a;b",
        "F": Decimal("0.1"),
    }
    assert codec.encode_fields({"C": None}, clearing=True) == {"C": None}
    with pytest.raises(ApiError) as caught:
        codec.encode_fields({"G": {"nested": 1}}, clearing=False)
    assert (caught.value.kind, caught.value.column) == (ErrorKind.UNSUPPORTED, "G")


def test_codec_decodes_salesforce_datetimes() -> None:
    record = {
        "attributes": {"type": "Contact"},
        "CreatedDate": "2026-12-01T03:19:51.000+0000",
        "Account": {"Name": "nested relationship"},
        "Birthdate": "1990-02-28",
        "N": 3,
    }
    assert codec.decode_record(record) == {
        "CreatedDate": "2026-12-01T03:19:51.000+00:00",
        "Birthdate": "1990-02-28",
        "N": 3,
    }


def test_soql_literals_cannot_escape_their_quotes() -> None:
    assert soql.literal("O'Brien\\x") == "'O\\'Brien\\\\x'"
    query = soql.select_in("Contact", ["Id", "Email"], "Email", ["a'b", "c"])
    assert query == "SELECT Id, Email FROM Contact WHERE Email IN ('a\\'b', 'c')"
    since = datetime(2026, 12, 1, 3, 4, 5, tzinfo=UTC)
    assert "CreatedDate >= 2026-12-01T03:04:05Z" in soql.select_created_since(
        "Contact", ["Id"], since
    )


@pytest.mark.parametrize(
    ("value", "field_type", "sent"),
    [
        ("42", "int", 42),
        (Decimal("42"), "int", 42),
        (Decimal("4.5"), "int", Decimal("4.5")),  # Salesforce says what is wrong
        ("12.50", "currency", Decimal("12.50")),
        ("abc", "double", "abc"),
        ("TRUE", "boolean", True),
        ("f", "boolean", False),
        ("maybe", "boolean", "maybe"),
        (7, "string", "7"),
        (Decimal("7.10"), "phone", "7.10"),
        (True, "picklist", "true"),
        ("x", None, "x"),
        (None, "int", None),
    ],
)
def test_values_are_sent_as_the_describe_types_them(
    value: object, field_type: str | None, sent: object
) -> None:
    assert codec.as_field_type(value, field_type) == sent
    assert type(codec.as_field_type(value, field_type)) is type(sent)
