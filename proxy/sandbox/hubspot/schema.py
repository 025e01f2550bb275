"""Object types and property definitions, shaped like HubSpot's properties API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

PropertyType = Literal["string", "number", "date", "datetime", "bool", "enumeration"]

FIELD_TYPES = frozenset(
    {
        "text",
        "textarea",
        "phonenumber",
        "html",
        "file",
        "number",
        "date",
        "booleancheckbox",
        "checkbox",
        "radio",
        "select",
        "calculation_equation",
    }
)


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class PropertyOption(_Camel):
    label: str
    value: str
    display_order: int = 0
    hidden: bool = False


class PropertyDef(_Camel):
    """One property definition; the JSON form is HubSpot's `Property` object."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=100)
    label: str
    type: PropertyType
    field_type: str
    group_name: str = "sandbox"
    description: str = ""
    options: list[PropertyOption] = []
    has_unique_value: bool = False
    # Owner ids and similar are options HubSpot checks elsewhere; the sandbox skips them.
    external_options: bool = False
    read_only: bool = Field(default=False, exclude=True)
    hubspot_defined: bool = False

    def to_json(self) -> dict[str, object]:
        data = self.model_dump(by_alias=True)
        data["modificationMetadata"] = {
            "archivable": not self.hubspot_defined,
            "readOnlyDefinition": self.hubspot_defined,
            "readOnlyValue": self.read_only,
        }
        return data


@dataclass(frozen=True)
class ObjectTypeInfo:
    """Naming facts that differ between object types (ids, system property names)."""

    name: str
    singular: str
    type_id: str
    label: str
    created_property: str
    modified_property: str
    # Returned by GET when the client names no properties; None means "all".
    default_properties: tuple[str, ...] | None

    @property
    def system_properties(self) -> tuple[str, str, str]:
        return ("hs_object_id", self.created_property, self.modified_property)


@dataclass
class TypeSchema:
    info: ObjectTypeInfo
    properties: dict[str, PropertyDef] = field(default_factory=dict)
    required: frozenset[str] = frozenset()

    def unique_properties(self) -> list[str]:
        return [p.name for p in self.properties.values() if p.has_unique_value]


STANDARD_TYPES: dict[str, ObjectTypeInfo] = {
    "contacts": ObjectTypeInfo(
        name="contacts",
        singular="contact",
        type_id="0-1",
        label="Contact",
        created_property="createdate",
        modified_property="lastmodifieddate",
        default_properties=("firstname", "lastname", "email"),
    ),
    "companies": ObjectTypeInfo(
        name="companies",
        singular="company",
        type_id="0-2",
        label="Company",
        created_property="createdate",
        modified_property="hs_lastmodifieddate",
        default_properties=("name", "domain"),
    ),
    "deals": ObjectTypeInfo(
        name="deals",
        singular="deal",
        type_id="0-3",
        label="Deal",
        created_property="createdate",
        modified_property="hs_lastmodifieddate",
        default_properties=("dealname", "amount", "closedate", "pipeline", "dealstage"),
    ),
}

_ALIASES = {
    alias: name
    for name, info in STANDARD_TYPES.items()
    for alias in (name, info.singular, info.type_id)
}


def canonical_type(name: str) -> str:
    """HubSpot accepts `contacts`, `contact` and `0-1` alike; custom names pass through."""
    lowered = name.lower()
    return _ALIASES.get(lowered, lowered)


def custom_type_info(name: str, ordinal: int) -> ObjectTypeInfo:
    return ObjectTypeInfo(
        name=name,
        singular=name,
        type_id=f"2-{ordinal}",
        label=name.replace("_", " ").title(),
        created_property="hs_createdate",
        modified_property="hs_lastmodifieddate",
        default_properties=None,
    )


def _prop(
    name: str,
    label: str,
    type_: PropertyType = "string",
    field_type: str = "text",
    **extra: object,
) -> PropertyDef:
    return PropertyDef.model_validate(
        {
            "name": name,
            "label": label,
            "type": type_,
            "field_type": field_type,
            "hubspot_defined": True,
            **extra,
        }
    )


def _options(*values: str) -> list[dict[str, object]]:
    return [{"label": v, "value": v, "display_order": i} for i, v in enumerate(values)]


def system_properties(info: ObjectTypeInfo) -> list[PropertyDef]:
    return [
        _prop("hs_object_id", "Record ID", "number", "number", read_only=True),
        _prop(info.created_property, "Create Date", "datetime", "date", read_only=True),
        _prop(info.modified_property, "Last Modified Date", "datetime", "date", read_only=True),
    ]


SEED_PROPERTIES: dict[str, list[PropertyDef]] = {
    "contacts": [
        _prop("email", "Email", has_unique_value=True),
        _prop("firstname", "First Name"),
        _prop("lastname", "Last Name"),
        _prop("phone", "Phone Number", field_type="phonenumber"),
        _prop("company", "Company Name"),
        _prop("website", "Website URL"),
        _prop("jobtitle", "Job Title"),
        _prop("city", "City"),
        _prop("country", "Country/Region"),
        _prop(
            "lifecyclestage",
            "Lifecycle Stage",
            "enumeration",
            "radio",
            options=_options(
                "subscriber",
                "lead",
                "marketingqualifiedlead",
                "salesqualifiedlead",
                "opportunity",
                "customer",
                "evangelist",
                "other",
            ),
        ),
    ],
    "companies": [
        _prop("name", "Company name"),
        _prop("domain", "Company Domain Name"),
        _prop("industry", "Industry"),
        _prop("city", "City"),
    ],
    "deals": [
        _prop("dealname", "Deal Name"),
        _prop("amount", "Amount", "number", "number"),
        _prop(
            "dealstage",
            "Deal Stage",
            "enumeration",
            "radio",
            options=_options(
                "appointmentscheduled",
                "qualifiedtobuy",
                "presentationscheduled",
                "decisionmakerboughtin",
                "contractsent",
                "closedwon",
                "closedlost",
            ),
        ),
        _prop("pipeline", "Pipeline", "enumeration", "select", options=_options("default")),
        _prop("closedate", "Close Date", "datetime", "date"),
        _prop("hubspot_owner_id", "Deal owner", "enumeration", "select", external_options=True),
    ],
}
