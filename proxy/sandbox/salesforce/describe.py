"""Describe results: `GET /sobjects/` (global describe) and `GET /sobjects/{Type}/describe`,
with the field properties clients actually read (a subset of Salesforce's ~60 keys)."""

from __future__ import annotations

from .schema import NUMBER_TYPES, FieldDef, SObjectSchema

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


def _urls(schema: SObjectSchema, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{schema.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def object_summary(schema: SObjectSchema, version: str) -> dict[str, object]:
    return {
        "name": schema.name,
        "label": schema.label,
        "labelPlural": schema.label_plural,
        "custom": schema.custom,
        "keyPrefix": schema.key_prefix,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "undeletable": True,
        "urls": _urls(schema, version),
    }


def _relationship(item: FieldDef) -> str | None:
    if item.type != "reference":
        return None
    return item.name[:-3] + "__r" if item.custom else item.name.removesuffix("Id")


def field_describe(item: FieldDef) -> dict[str, object]:
    picklist = [
        {"value": v, "label": v, "active": True, "defaultValue": v == item.default}
        for v in item.picklist
    ]
    return {
        "name": item.name,
        "label": item.label,
        "type": item.type,
        "soapType": _SOAP_TYPES.get(item.type, "xsd:string"),
        "length": item.length if item.type not in NUMBER_TYPES else 0,
        "byteLength": item.length * 3,
        "digits": item.digits,
        "precision": item.precision,
        "scale": item.scale,
        "nillable": item.nillable,
        "createable": item.createable,
        "updateable": item.updateable,
        "calculated": item.calculated,
        "custom": item.custom,
        "externalId": item.external_id,
        "unique": item.unique,
        "caseSensitive": item.case_sensitive,
        "idLookup": item.id_lookup,
        "nameField": item.name == "Name",
        "defaultedOnCreate": item.defaulted_on_create,
        "defaultValue": item.default,
        "filterable": True,
        "sortable": item.type != "textarea",
        "groupable": item.type not in ("textarea", "double", "currency", "percent", "datetime"),
        "picklistValues": picklist,
        "restrictedPicklist": item.restricted,
        "referenceTo": list(item.reference_to),
        "relationshipName": _relationship(item),
    }


def describe(schema: SObjectSchema, version: str) -> dict[str, object]:
    return object_summary(schema, version) | {
        "fields": [field_describe(f) for f in schema.fields.values()],
        "childRelationships": [],
        "recordTypeInfos": [],
    }
