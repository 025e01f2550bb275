"""HubSpot's error envelope: `{status, message, correlationId, category, errors, context}`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    """One invalid property value, as HubSpot lists them inside a VALIDATION_ERROR."""

    name: str
    code: str
    message: str


@dataclass(eq=False)
class HubSpotError(Exception):
    """An error response; raised anywhere below a route and rendered by the app."""

    status: int
    message: str
    category: str
    errors: list[dict[str, object]] = field(default_factory=list)
    context: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.category}: {self.message}"

    def body(self, correlation_id: str) -> dict[str, object]:
        """The top-level error response body."""
        body: dict[str, object] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id,
            "category": self.category,
        }
        return body | self._details() | self.extra

    def batch_entry(self, trace_id: str | None) -> dict[str, object]:
        """One entry of a 207 response's `errors` list."""
        entry: dict[str, object] = {
            "status": "error",
            "category": self.category,
            "message": self.message,
        }
        details = self._details()
        if trace_id is not None:
            details["context"] = {**self.context, "objectWriteTraceId": [trace_id]}
        return entry | details

    def _details(self) -> dict[str, object]:
        details: dict[str, object] = {}
        if self.context:
            details["context"] = dict(self.context)
        if self.errors:
            details["errors"] = list(self.errors)
        return details


def validation_failed(issues: Sequence[Issue], portal_id: int) -> HubSpotError:
    """HubSpot embeds the per-property verdicts as JSON inside the message, and (newer
    responses) repeats them as structured `errors` entries."""
    verdicts = [
        {
            "isValid": False,
            "message": issue.message,
            "error": issue.code,
            "name": issue.name,
            "localizedErrorMessage": issue.message,
            "portalId": portal_id,
        }
        for issue in issues
    ]
    return HubSpotError(
        400,
        f"Property values were not valid: {json.dumps(verdicts, separators=(',', ':'))}",
        "VALIDATION_ERROR",
        errors=[
            {"message": i.message, "code": i.code, "context": {"propertyName": [i.name]}}
            for i in issues
        ],
    )


def bad_request(message: str, **context: list[str]) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR", context=dict(context))


def not_found(object_id: str) -> HubSpotError:
    return HubSpotError(
        404,
        "Object not found.  objectId are usually numeric.",
        "OBJECT_NOT_FOUND",
        context={"id": [object_id]},
    )


def conflict(message: str, **context: list[str]) -> HubSpotError:
    return HubSpotError(409, message, "CONFLICT", context=dict(context))


def unauthorized() -> HubSpotError:
    return HubSpotError(
        401,
        "Authentication credentials not found. This API supports OAuth 2.0 authentication "
        "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
        "oauth-overview",
        "INVALID_AUTHENTICATION",
    )


def rate_limited(policy: str, portal_id: int) -> HubSpotError:
    return HubSpotError(
        429,
        f"You have reached your {policy.lower()} limit.",
        "RATE_LIMITS",
        extra={
            "errorType": "RATE_LIMIT",
            "policyName": policy,
            "groupName": f"public-api-private-app:{portal_id}",
        },
    )


def missing_ids(type_label: str, verb: str, ids: Sequence[str]) -> HubSpotError:
    """The per-batch entry for inputs whose objects do not exist (batch read/update)."""
    return HubSpotError(
        404,
        f"Could not {verb} some {type_label.upper()} objects, they may be deleted or not exist. "
        "Check that ids are valid.",
        "OBJECT_NOT_FOUND",
        context={"ids": list(ids)},
    )
