"""`/v1/customers`: the customer object, its parameters and list filters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

from . import errors, ids
from .params import EXPAND, Field, string
from .resource import Resource, apply_metadata, assign, now
from .search import SearchField
from .store import Obj, Store

_ADDRESS_KEYS = ("line1", "line2", "city", "state", "postal_code", "country")
_ADDRESS_FIELDS = {k: string(nullable=True) for k in _ADDRESS_KEYS}
ADDRESS = Field("object", nullable=True, fields=_ADDRESS_FIELDS)
SHIPPING = Field(
    "object",
    nullable=True,
    fields={
        "address": Field("object", required=True, fields=_ADDRESS_FIELDS),
        "name": string(required=True),
        "phone": string(nullable=True),
    },
)
INVOICE_SETTINGS = Field(
    "object",
    fields={
        "custom_fields": Field(
            "list",
            nullable=True,
            max_items=4,
            item=Field(
                "object",
                fields={
                    "name": string(required=True, max_length=40),
                    "value": string(required=True, max_length=140),
                },
            ),
        ),
        "default_payment_method": string(nullable=True),
        "footer": string(nullable=True),
        "rendering_options": Field(
            "object",
            nullable=True,
            fields={
                "amount_tax_display": Field(
                    "enum", nullable=True, choices=("exclude_tax", "include_inclusive_tax")
                ),
                "template": string(nullable=True),
            },
        ),
    },
)
_SPEC: dict[str, Field] = {
    "address": ADDRESS,
    "balance": Field("integer"),
    "description": string(nullable=True),
    "email": Field("email", nullable=True, max_length=512),
    "invoice_prefix": string(),
    "invoice_settings": INVOICE_SETTINGS,
    "metadata": Field("metadata"),
    "name": string(nullable=True, max_length=256),
    "next_invoice_sequence": Field("integer", minimum=1),
    "phone": string(nullable=True, max_length=20),
    "preferred_locales": Field("list", nullable=True, item=string()),
    "shipping": SHIPPING,
    "tax_exempt": Field("enum", nullable=True, choices=("none", "exempt", "reverse")),
    "expand": EXPAND,
}
_PLAIN = ("balance", "description", "email", "name", "next_invoice_sequence", "phone")
_INVOICE_PREFIX = re.compile(r"^[A-Z0-9]{3,12}$")


class Customers(Resource):
    name = "customers"
    object_name = "customer"
    label = "customer"
    create_spec: ClassVar[Mapping[str, Field]] = _SPEC
    update_spec: ClassVar[Mapping[str, Field]] = _SPEC
    list_spec: ClassVar[Mapping[str, Field]] = {
        "email": string(max_length=512),
        "test_clock": string(),
    }
    search_fields: ClassVar[Mapping[str, SearchField]] = {
        "created": SearchField("number", "created"),
        "email": SearchField("string", "email"),
        "metadata": SearchField("metadata", "metadata"),
        "name": SearchField("string", "name"),
        "phone": SearchField("string", "phone"),
    }
    expandable = frozenset(
        {"default_source", "invoice_settings.default_payment_method", "test_clock"}
    )
    stub_after_delete = True

    def create(self, params: dict[str, object], store: Store) -> Obj:
        obj: Obj = {
            "id": ids.new_id("cus"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "discount": None,
            "email": None,
            "invoice_prefix": ids.invoice_prefix(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": {},
            "name": None,
            "next_invoice_sequence": 1,
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        obj = self.update(obj, params, store)
        store.put(self.name, obj)
        return obj

    def update(self, obj: Obj, params: dict[str, object], store: Store) -> Obj:
        prefix = params.get("invoice_prefix")
        if isinstance(prefix, str) and not _INVOICE_PREFIX.match(prefix):
            raise errors.invalid(
                "Invalid invoice_prefix: must be 3 to 12 upper-case letters or numbers",
                "invoice_prefix",
            )
        settings = params.get("invoice_settings")
        if isinstance(settings, dict):
            method = settings.get("default_payment_method")
            if method is not None:
                raise errors.resource_missing(
                    "PaymentMethod", str(method), "invoice_settings[default_payment_method]", 400
                )
            current = obj["invoice_settings"]
            assert isinstance(current, dict)
            current.update(settings)
        assign(obj, params, (*_PLAIN, "invoice_prefix"))
        if "address" in params:
            obj["address"] = _address(params["address"])
        if "shipping" in params:
            shipping = params["shipping"]
            obj["shipping"] = (
                None
                if not isinstance(shipping, dict)
                else {
                    "address": _address(shipping["address"]),
                    "name": shipping["name"],
                    "phone": shipping.get("phone"),
                }
            )
        if "preferred_locales" in params:
            obj["preferred_locales"] = params["preferred_locales"] or []
        if "tax_exempt" in params:
            obj["tax_exempt"] = params["tax_exempt"] or "none"
        apply_metadata(obj, params)
        return obj

    def matches(self, obj: Obj, filters: Mapping[str, object]) -> bool:
        email = filters.get("email")
        clock = filters.get("test_clock")
        return (email is None or obj["email"] == email) and (
            clock is None or obj["test_clock"] == clock
        )

    def expand(self, obj: Obj, path: str, store: Store) -> None:
        """Every expandable property of a sandbox customer is null: nothing to replace."""


def _address(value: object) -> Obj | None:
    """Stripe replaces a whole address; the keys not given become null."""
    if not isinstance(value, dict):
        return None
    return {k: value.get(k) for k in _ADDRESS_KEYS}
