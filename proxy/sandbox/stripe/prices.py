"""`/v1/prices`: the price object. Prices are immutable apart from a few fields (Stripe
answers `parameter_unknown` for the rest) and cannot be deleted, only archived."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from . import errors, ids
from .currencies import CURRENCIES
from .params import EXPAND, Field, string
from .price_fields import (
    CURRENCY_OPTIONS,
    CUSTOM_UNIT_AMOUNT,
    INTERVALS,
    RECURRING,
    TAX_BEHAVIOR,
    UNIT_AMOUNT,
    UNIT_AMOUNT_DECIMAL,
)
from .products import PRODUCT_DATA_FIELDS, Products
from .resource import Resource, apply_metadata, now
from .search import SearchField
from .store import Obj, Store, render

_LOOKUP_KEY = string(max_length=200)


class Prices(Resource):
    name = "prices"
    object_name = "price"
    label = "price"
    deletable = False
    create_spec: ClassVar[Mapping[str, Field]] = {
        "active": Field("boolean"),
        "billing_scheme": Field("enum", choices=("per_unit", "tiered")),
        "currency": Field("currency", required=True),
        "currency_options": CURRENCY_OPTIONS,
        "custom_unit_amount": CUSTOM_UNIT_AMOUNT,
        "lookup_key": _LOOKUP_KEY,
        "metadata": Field("metadata"),
        "nickname": string(),
        "product": string(),
        "product_data": Field("object", fields=PRODUCT_DATA_FIELDS),
        "recurring": RECURRING,
        "tax_behavior": TAX_BEHAVIOR,
        "transfer_lookup_key": Field("boolean"),
        "unit_amount": UNIT_AMOUNT,
        "unit_amount_decimal": UNIT_AMOUNT_DECIMAL,
        "expand": EXPAND,
    }
    update_spec: ClassVar[Mapping[str, Field]] = {
        "active": Field("boolean"),
        "currency_options": Field("map", nullable=True, item=CURRENCY_OPTIONS.item),
        "lookup_key": string(nullable=True, max_length=200),
        "metadata": Field("metadata"),
        "nickname": string(nullable=True),
        "tax_behavior": TAX_BEHAVIOR,
        "transfer_lookup_key": Field("boolean"),
        "expand": EXPAND,
    }
    list_spec: ClassVar[Mapping[str, Field]] = {
        "active": Field("boolean"),
        "currency": Field("currency"),
        "lookup_keys": Field("list", max_items=10, item=_LOOKUP_KEY),
        "product": string(),
        "recurring": Field(
            "object",
            fields={
                "interval": Field("enum", choices=INTERVALS),
                "meter": string(),
                "usage_type": RECURRING.fields["usage_type"],
            },
        ),
        "type": Field("enum", choices=("one_time", "recurring")),
    }
    search_fields: ClassVar[Mapping[str, SearchField]] = {
        "active": SearchField("boolean", "active"),
        "created": SearchField("number", "created"),
        "currency": SearchField("token", "currency"),
        "lookup_key": SearchField("token", "lookup_key"),
        "metadata": SearchField("metadata", "metadata"),
        "product": SearchField("token", "product"),
        "type": SearchField("token", "type"),
    }
    expandable = frozenset({"product", "currency_options"})

    def create(self, params: dict[str, object], store: Store) -> Obj:
        product_data = params.get("product_data")
        if "product" in params and product_data is not None:
            raise errors.only_one_of("product", "product_data")
        new_product = None
        if isinstance(product_data, dict):
            new_product = Products().build(product_data, store)
            product_id = str(new_product["id"])
        elif "product" in params:
            product_id = str(params["product"])
        else:
            raise errors.parameter_missing("product")
        price = self.build(params, store, product_id=product_id, pending=new_product)
        if new_product is not None:
            store.put(Products.name, new_product)
        self._store_with_lookup_key(price, params, store)
        return price

    def build(
        self,
        params: Mapping[str, object],
        store: Store,
        *,
        product_id: str,
        pending: Obj | None = None,
    ) -> Obj:
        """A new price of a product (`pending`: one being created alongside), not stored."""
        if pending is None and store.get(Products.name, product_id) is None:
            raise errors.resource_missing("product", product_id, "product", 400)
        if params.get("billing_scheme") == "tiered":
            raise errors.parameter_missing("tiers")
        unit_amount, unit_amount_decimal, custom = _amount(params)
        recurring = params.get("recurring")
        if custom is not None and recurring is not None:
            raise errors.invalid(
                "custom_unit_amount can only be used with one-time prices, not recurring ones.",
                "custom_unit_amount",
            )
        obj: Obj = {
            "id": "price_1" + ids.base62(23),
            "object": "price",
            "active": params.get("active", True),
            "billing_scheme": "per_unit",
            "created": now(),
            "currency": params["currency"],
            "custom_unit_amount": custom,
            "livemode": False,
            "lookup_key": params.get("lookup_key"),
            "metadata": {},
            "nickname": params.get("nickname"),
            "product": product_id,
            "recurring": _recurring(recurring),
            "tax_behavior": params.get("tax_behavior") or "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if recurring is not None else "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": unit_amount_decimal,
            "_currency_options": _options(params.get("currency_options")),
        }
        self._check_lookup_key(obj, params, store)
        apply_metadata(obj, params)
        return obj

    def update(self, obj: Obj, params: dict[str, object], store: Store) -> Obj:
        if "tax_behavior" in params:
            current, wanted = obj["tax_behavior"], params["tax_behavior"]
            if current != "unspecified" and wanted != current:
                raise errors.invalid(
                    f"This price's tax_behavior is already `{current}`: it can only be set "
                    "once, when it is `unspecified`.",
                    "tax_behavior",
                )
            obj["tax_behavior"] = wanted
        for name in ("active", "nickname", "lookup_key"):
            if name in params:
                obj[name] = params[name]
        if "currency_options" in params:
            options = params["currency_options"]
            current_options = obj["_currency_options"]
            assert isinstance(current_options, dict)
            obj["_currency_options"] = (
                {} if options is None else {**current_options, **_options(options)}
            )
        self._check_lookup_key(obj, params, store)
        apply_metadata(obj, params)
        return obj

    def save(self, obj: Obj, params: Mapping[str, object], store: Store) -> None:
        self._store_with_lookup_key(obj, params, store)

    def matches(self, obj: Obj, filters: Mapping[str, object]) -> bool:
        keys = filters.get("lookup_keys")
        recurring = filters.get("recurring")
        if isinstance(recurring, dict):
            have = obj["recurring"]
            if not isinstance(have, dict) or any(have[k] != v for k, v in recurring.items()):
                return False
        return all(
            filters[k] == obj[k] for k in ("active", "currency", "product", "type") if k in filters
        ) and (not isinstance(keys, list) or obj["lookup_key"] in keys)

    def expand(self, obj: Obj, path: str, store: Store) -> None:
        if path == "product":
            product = store.get(Products.name, str(obj["product"]))
            if product is not None:
                obj["product"] = render(product)
            return
        raw = store.get(self.name, str(obj["id"]))
        options = (
            dict(raw["_currency_options"])
            if raw and isinstance(raw["_currency_options"], dict)
            else {}
        )
        options[str(obj["currency"])] = {
            "custom_unit_amount": obj["custom_unit_amount"],
            "tax_behavior": obj["tax_behavior"],
            "unit_amount": obj["unit_amount"],
            "unit_amount_decimal": obj["unit_amount_decimal"],
        }
        obj["currency_options"] = options

    def _check_lookup_key(self, obj: Obj, params: Mapping[str, object], store: Store) -> None:
        key = params.get("lookup_key")
        if not isinstance(key, str) or params.get("transfer_lookup_key") is True:
            return
        for other in store.objects(self.name):
            if other["lookup_key"] == key and other["id"] != obj["id"]:
                raise errors.invalid(
                    f"A price (`{other['id']}`) already uses that lookup key.", "lookup_key"
                )

    def _store_with_lookup_key(self, obj: Obj, params: Mapping[str, object], store: Store) -> None:
        """Store a price; `transfer_lookup_key` moves its lookup key off any other price."""
        key = obj["lookup_key"]
        if isinstance(key, str) and params.get("transfer_lookup_key") is True:
            for other in store.objects(self.name):
                if other["lookup_key"] == key and other["id"] != obj["id"]:
                    other["lookup_key"] = None
                    store.put(self.name, other)
        store.put(self.name, obj)


def _amount(params: Mapping[str, object]) -> tuple[int | None, str | None, Obj | None]:
    given = [k for k in ("unit_amount", "unit_amount_decimal", "custom_unit_amount") if k in params]
    if len(given) > 1:
        raise errors.only_one_of(*given)
    if not given:
        raise errors.parameter_missing("unit_amount")
    if "unit_amount" in params:
        amount = int(str(params["unit_amount"]))
        return amount, str(amount), None
    if "unit_amount_decimal" in params:
        value = params["unit_amount_decimal"]
        assert isinstance(value, Decimal)
        if -value.as_tuple().exponent > 12:  # type: ignore[operator]
            raise errors.invalid(
                "Invalid unit_amount_decimal: at most 12 decimal places are allowed",
                "unit_amount_decimal",
            )
        text = format(value.normalize(), "f")
        return (int(value) if value == value.to_integral_value() else None), text, None
    custom = params["custom_unit_amount"]
    assert isinstance(custom, dict)
    if custom["enabled"] is not True:
        raise errors.invalid(
            "custom_unit_amount[enabled] must be true to create a customer-chosen price.",
            "custom_unit_amount[enabled]",
        )
    return None, None, {k: custom.get(k) for k in ("maximum", "minimum", "preset")}


def _recurring(value: object) -> Obj | None:
    if not isinstance(value, dict):
        return None
    return {
        "aggregate_usage": value.get("aggregate_usage"),
        "interval": value["interval"],
        "interval_count": value.get("interval_count", 1),
        "meter": value.get("meter"),
        "trial_period_days": value.get("trial_period_days"),
        "usage_type": value.get("usage_type", "licensed"),
    }


def _options(value: object) -> dict[str, object]:
    """`currency_options[eur][unit_amount]=...` as a price renders it when expanded."""
    if not isinstance(value, dict):
        return {}
    rendered: dict[str, object] = {}
    for currency, option in value.items():
        assert isinstance(option, dict)
        if currency not in CURRENCIES:
            raise errors.invalid(f"Invalid currency: {currency}", f"currency_options[{currency}]")
        amount = option.get("unit_amount")
        decimal = option.get("unit_amount_decimal")
        rendered[currency] = {
            "custom_unit_amount": option.get("custom_unit_amount"),
            "tax_behavior": option.get("tax_behavior", "unspecified"),
            "unit_amount": amount,
            "unit_amount_decimal": str(amount)
            if amount is not None
            else (format(decimal.normalize(), "f") if isinstance(decimal, Decimal) else None),
        }
    return rendered
