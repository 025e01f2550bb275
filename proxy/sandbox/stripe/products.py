"""`/v1/products`: the product object, its parameters, list filters and delete rule."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar, Protocol

from . import errors, ids
from .params import EXPAND, Field, string
from .price_fields import DEFAULT_PRICE_DATA
from .resource import Resource, apply_metadata, assign, now
from .search import SearchField
from .store import Obj, Store, render


class DefaultPrices(Protocol):
    """What a product needs to create its ``default_price_data`` price."""

    name: ClassVar[str]

    def build(
        self,
        params: Mapping[str, object],
        store: Store,
        *,
        product_id: str,
        pending: Obj | None = ...,
    ) -> Obj: ...


_DIMENSION = Field("decimal", required=True, minimum=Decimal(0))
PACKAGE_DIMENSIONS = Field(
    "object",
    nullable=True,
    fields={k: _DIMENSION for k in ("height", "length", "weight", "width")},
)
# The product fields a price's `product_data` may set (Stripe's subset).
PRODUCT_DATA_FIELDS: dict[str, Field] = {
    "id": string(max_length=255),
    "name": string(required=True),
    "active": Field("boolean"),
    "metadata": Field("metadata"),
    "statement_descriptor": string(max_length=22),
    "tax_code": string(),
    "unit_label": string(max_length=12),
}
_COMMON: dict[str, Field] = {
    "active": Field("boolean"),
    "description": string(nullable=True, max_length=40_000),
    "images": Field("list", nullable=True, max_items=8, item=string(max_length=2048)),
    "marketing_features": Field(
        "list",
        nullable=True,
        max_items=15,
        item=Field("object", fields={"name": string(required=True, max_length=80)}),
    ),
    "metadata": Field("metadata"),
    "package_dimensions": PACKAGE_DIMENSIONS,
    "shippable": Field("boolean", nullable=True),
    "statement_descriptor": string(nullable=True, max_length=22),
    "tax_code": string(nullable=True),
    "unit_label": string(nullable=True, max_length=12),
    "url": string(nullable=True, max_length=5000),
    "expand": EXPAND,
}
_PLAIN = ("active", "description", "shippable", "statement_descriptor", "tax_code")
_PLAIN_MORE = ("unit_label", "url", "name")
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")


class Products(Resource):
    name = "products"
    object_name = "product"
    label = "product"
    create_spec: ClassVar[Mapping[str, Field]] = {
        **_COMMON,
        "id": string(max_length=255),
        "name": string(required=True),
        "default_price_data": DEFAULT_PRICE_DATA,
    }
    update_spec: ClassVar[Mapping[str, Field]] = {
        **_COMMON,
        "name": string(),
        "default_price": string(nullable=True),
    }
    list_spec: ClassVar[Mapping[str, Field]] = {
        "active": Field("boolean"),
        "ids": Field("list", item=string()),
        "shippable": Field("boolean"),
        "url": string(),
    }
    search_fields: ClassVar[Mapping[str, SearchField]] = {
        "active": SearchField("boolean", "active"),
        "created": SearchField("number", "created"),
        "description": SearchField("string", "description"),
        "metadata": SearchField("metadata", "metadata"),
        "name": SearchField("string", "name"),
        "shippable": SearchField("boolean", "shippable"),
        "url": SearchField("string", "url"),
    }
    expandable = frozenset({"default_price"})

    def __init__(self, prices: DefaultPrices | None = None) -> None:
        #: Builds the price of ``default_price_data`` (given by the routes: prices.py
        #: imports this module for ``product_data``, so this one cannot import it).
        self._prices = prices

    def create(self, params: dict[str, object], store: Store) -> Obj:
        obj = self.build(params, store)
        price_data = params.get("default_price_data")
        if isinstance(price_data, dict) and self._prices is not None:
            price = self._prices.build(price_data, store, product_id=str(obj["id"]), pending=obj)
            obj["default_price"] = price["id"]
            store.put(self.name, obj)
            store.put(self._prices.name, price)
        else:
            store.put(self.name, obj)
        return obj

    def build(self, params: Mapping[str, object], store: Store) -> Obj:
        """A new product, not yet stored (a price's `product_data` builds one too)."""
        custom_id = params.get("id")
        if isinstance(custom_id, str):
            if not _CUSTOM_ID.match(custom_id):
                raise errors.invalid(f"Invalid id: {custom_id}", "id")
            if store.exists(self.name, custom_id):
                raise errors.invalid(
                    f"Product already exists: '{custom_id}'", "id", "resource_already_exists"
                )
        moment = now()
        obj: Obj = {
            "id": custom_id or ids.new_id("prod"),
            "object": "product",
            "active": True,
            "created": moment,
            "default_price": None,
            "description": None,
            "images": [],
            "livemode": False,
            "marketing_features": [],
            "metadata": {},
            "name": params["name"],
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": None,
            "tax_code": None,
            "type": "service",
            "unit_label": None,
            "updated": moment,
            "url": None,
        }
        return self._apply(obj, params)

    def update(self, obj: Obj, params: dict[str, object], store: Store) -> Obj:
        if "default_price" in params:
            price_id = params["default_price"]
            if price_id is not None:
                price = store.get("prices", str(price_id))
                if price is None:
                    raise errors.resource_missing("price", str(price_id), "default_price", 400)
                if price["product"] != obj["id"]:
                    raise errors.invalid(
                        f"The price `{price_id}` does not belong to this product (`{obj['id']}`).",
                        "default_price",
                    )
                if not price["active"]:
                    raise errors.invalid(
                        f"The price `{price_id}` is archived; a product's default price "
                        "must be active.",
                        "default_price",
                    )
            obj["default_price"] = price_id
        obj["updated"] = now()
        return self._apply(obj, params)

    def check_delete(self, obj: Obj, store: Store) -> None:
        if any(p["product"] == obj["id"] for p in store.objects("prices")):
            raise errors.invalid(
                "This product cannot be deleted because it has one or more user-created prices."
            )

    def matches(self, obj: Obj, filters: Mapping[str, object]) -> bool:
        id_list = filters.get("ids")
        return all(
            filters[k] == obj[k] for k in ("active", "shippable", "url") if k in filters
        ) and (not isinstance(id_list, list) or obj["id"] in id_list)

    def expand(self, obj: Obj, path: str, store: Store) -> None:
        price_id = obj.get("default_price")
        if isinstance(price_id, str):
            price = store.get("prices", price_id)
            obj["default_price"] = render(price) if price is not None else price_id

    @staticmethod
    def _apply(obj: Obj, params: Mapping[str, object]) -> Obj:
        assign(obj, params, (*_PLAIN, *_PLAIN_MORE))
        if "images" in params:
            obj["images"] = params["images"] or []
        if "marketing_features" in params:
            obj["marketing_features"] = params["marketing_features"] or []
        if "package_dimensions" in params:
            dims = params["package_dimensions"]
            obj["package_dimensions"] = (
                {k: float(v) for k, v in dims.items()} if isinstance(dims, dict) else None
            )
        apply_metadata(obj, params)
        return obj
