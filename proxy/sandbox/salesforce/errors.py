"""Salesforce's error shapes. REST calls answer a JSON list of
`{"message", "errorCode", ["fields"]}`; sObject Collections report per-record errors as
`{"statusCode", "message", "fields"}` inside each SaveResult."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

NO_SUCH_RESOURCE = "The requested resource does not exist"
ROLLED_BACK = (
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header"
)
ACCESS_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the "
    "custom field name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)


@dataclass
class ApiError:
    """One error. `fields` is None for errors that are not about record fields (they
    render without a `fields` key at top level, with an empty list inside SaveResults)."""

    code: str
    message: str
    fields: Sequence[str] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def top(self) -> dict[str, object]:
        body: dict[str, object] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            body["fields"] = list(self.fields)
        return body | self.extra

    def item(self) -> dict[str, object]:
        body: dict[str, object] = {
            "statusCode": self.code,
            "message": self.message,
            "fields": list(self.fields or ()),
        }
        return body | self.extra


class SalesforceError(Exception):
    """An error response; raised anywhere below a route and rendered by the app. `body`
    overrides the usual list (OAuth errors and upsert's 300 answer have other shapes)."""

    def __init__(self, status: int, errors: Sequence[ApiError] = (), body: object = None) -> None:
        super().__init__(f"{status} {[e.code for e in errors]}")
        self.status = status
        self.errors = list(errors)
        self.override = body

    def body(self) -> object:
        if self.override is not None:
            return self.override
        return [e.top() for e in self.errors]


def fail(status: int, code: str, message: str) -> SalesforceError:
    return SalesforceError(status, [ApiError(code, message)])


def not_found(message: str = NO_SUCH_RESOURCE) -> SalesforceError:
    return fail(404, "NOT_FOUND", message)


def bad_external_id_field(name: str) -> SalesforceError:
    return not_found(f"Provided external ID field does not exist or is not accessible: {name}")


def entity_deleted() -> ApiError:
    return ApiError("ENTITY_IS_DELETED", "entity is deleted", ())


def invalid_session() -> SalesforceError:
    return fail(401, "INVALID_SESSION_ID", "Session expired or invalid")


def request_limit() -> SalesforceError:
    return fail(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def no_such_column(name: str, type_name: str) -> SalesforceError:
    """An unknown field in a record body: the JSON cannot bind, so the whole call fails."""
    return fail(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {type_name}")


def no_such_column_in_query(name: str, type_name: str) -> SalesforceError:
    return fail(
        400, "INVALID_FIELD", f"No such column '{name}' on entity '{type_name}'. {ACCESS_HINT}"
    )


def unsupported_type(name: str) -> SalesforceError:
    return fail(
        400,
        "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom "
        "object, be sure to append the '__c' after the entity name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )


def json_parser(message: str) -> SalesforceError:
    return fail(400, "JSON_PARSER_ERROR", message)


def malformed_query(message: str) -> SalesforceError:
    return fail(400, "MALFORMED_QUERY", message)


def too_many_records(limit: int) -> SalesforceError:
    return fail(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {limit} records into this call",
    )


def rolled_back() -> ApiError:
    return ApiError("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK, ())
