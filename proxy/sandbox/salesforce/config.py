"""Sandbox settings: fixed at startup (credentials, schema additions, validation rules)
and switchable at runtime through `POST /_sandbox/config` (`Switches`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

FieldType = Literal[
    "id",
    "string",
    "email",
    "phone",
    "url",
    "textarea",
    "boolean",
    "int",
    "double",
    "currency",
    "percent",
    "date",
    "datetime",
    "picklist",
    "reference",
]


class FieldSpec(BaseModel):
    """A custom field, spelled like describe's field entries (`externalId`, `referenceTo`,
    ...); snake_case names are accepted too."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*__c$", max_length=43)
    type: FieldType
    label: str | None = None
    length: int | None = Field(default=None, gt=0, le=131072)
    external_id: bool = False
    unique: bool = False
    case_sensitive: bool = False
    required: bool = False
    picklist_values: list[str] = []
    restricted_picklist: bool = False
    reference_to: list[str] = []
    precision: int | None = Field(default=None, gt=0, le=18)
    scale: int | None = Field(default=None, ge=0, le=17)
    default_value: str | float | bool | None = None


class CustomObjectSpec(BaseModel):
    """A custom object type (`Invoice__c`): it gets Name and the system fields for free."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    fields: list[FieldSpec] = []
    required: list[str] = []


class ValidationRule(BaseModel):
    """A stand-in for an org's validation rules: saving a record whose `field` matches
    `forbidden_regex` fails with FIELD_CUSTOM_VALIDATION_EXCEPTION and `message`."""

    model_config = ConfigDict(extra="forbid")

    object: str
    field: str
    forbidden_regex: str
    message: str = "This value is not allowed by a validation rule."

    @field_validator("forbidden_regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid forbidden_regex: {exc}") from None
        return value


class RateLimit(BaseModel):
    """Salesforce's API request limit is per rolling 24 hours; tests shrink the window."""

    model_config = ConfigDict(extra="forbid")

    max_requests: int = Field(gt=0)
    window_s: float = Field(default=86_400.0, gt=0)


class Switches(BaseModel):
    """What `POST /_sandbox/config` may change; `/_sandbox/reset` restores the startup values.

    `duplicate_rules`: the org's standard Contact/Lead duplicate rules (match on Email).
    `token_ttl_s`: lifetime of access tokens issued from now on by the token endpoint.
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    rate_limit: RateLimit | None = None
    duplicate_rules: bool = True
    token_ttl_s: float = Field(default=7200.0, gt=0)


def _default_custom_fields() -> dict[str, list[FieldSpec]]:
    return {
        "Contact": [
            FieldSpec(name="User_Id__c", type="string", length=64, external_id=True, unique=True)
        ],
        "Account": [
            FieldSpec(
                name="External_Key__c", type="string", length=64, external_id=True, unique=True
            )
        ],
    }


class SalesforceSandboxConfig(BaseModel):
    """Giving `custom_fields` replaces the defaults (Contact.User_Id__c and
    Account.External_Key__c, both unique external ids); repeat them if you want them."""

    model_config = ConfigDict(extra="forbid")

    static_tokens: list[str] = ["sandbox-sf-token"]
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    refresh_token: str = "sandbox-refresh-token"
    custom_fields: dict[str, list[FieldSpec]] = Field(default_factory=_default_custom_fields)
    custom_objects: dict[str, CustomObjectSpec] = {}
    validation_rules: list[ValidationRule] = []
    switches: Switches = Switches()
    # The "M" of `Sforce-Limit-Info: api-usage=N/M` when no rate limit is switched on.
    api_daily_limit: int = Field(default=100_000, gt=0)
    request_log_limit: int = Field(default=10_000, gt=0)

    @field_validator("custom_objects")
    @classmethod
    def _custom_names(cls, value: dict[str, CustomObjectSpec]) -> dict[str, CustomObjectSpec]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*__c", name):
                raise ValueError(f"custom object names end in __c: {name!r}")
        return value
