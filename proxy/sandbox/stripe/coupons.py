"""`/v1/coupons`: the coupon object. Its id may be chosen by the client; only `name` and
`metadata` can change after creation."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from . import errors, ids
from .params import EXPAND, Field, string
from .resource import Resource, apply_metadata, now
from .store import Obj, Store

_ID = re.compile(r"^[A-Za-z0-9_\-]{1,200}$")


class Coupons(Resource):
    name = "coupons"
    object_name = "coupon"
    label = "coupon"
    create_spec: ClassVar[Mapping[str, Field]] = {
        "id": string(max_length=200),
        "amount_off": Field("integer", minimum=1),
        "currency": Field("currency"),
        "duration": Field("enum", choices=("forever", "once", "repeating")),
        "duration_in_months": Field("integer", minimum=1),
        "max_redemptions": Field("integer", minimum=1),
        "metadata": Field("metadata"),
        "name": string(max_length=40),
        "percent_off": Field("decimal", minimum=Decimal(0), maximum=Decimal(100)),
        "redeem_by": Field("integer"),
        "expand": EXPAND,
    }
    update_spec: ClassVar[Mapping[str, Field]] = {
        "metadata": Field("metadata"),
        "name": string(nullable=True, max_length=40),
        "expand": EXPAND,
    }

    def create(self, params: dict[str, object], store: Store) -> Obj:
        coupon_id = params.get("id")
        if isinstance(coupon_id, str):
            if not _ID.match(coupon_id):
                raise errors.invalid(f"Invalid id: {coupon_id}", "id")
            if store.exists(self.name, coupon_id):
                raise errors.invalid("Coupon already exists.", "id", "resource_already_exists")
        percent_off, amount_off = params.get("percent_off"), params.get("amount_off")
        if percent_off is not None and amount_off is not None:
            raise errors.only_one_of("amount_off", "percent_off")
        if percent_off is None and amount_off is None:
            raise errors.parameter_missing("percent_off")
        if isinstance(percent_off, Decimal) and percent_off <= 0:
            raise errors.invalid("This value must be greater than 0.", "percent_off")
        if amount_off is not None and "currency" not in params:
            raise errors.parameter_missing("currency")
        if amount_off is None and "currency" in params:
            raise errors.invalid(
                "currency can only be set on a coupon with amount_off.", "currency"
            )
        duration = params.get("duration", "once")
        months = params.get("duration_in_months")
        if duration == "repeating" and months is None:
            raise errors.parameter_missing("duration_in_months")
        if duration != "repeating" and months is not None:
            raise errors.invalid(
                "duration_in_months can only be set when duration is `repeating`.",
                "duration_in_months",
            )
        redeem_by = params.get("redeem_by")
        if isinstance(redeem_by, int) and redeem_by <= time.time():
            raise errors.invalid("redeem_by must be in the future.", "redeem_by")
        obj: Obj = {
            "id": coupon_id or ids.base62(8),
            "object": "coupon",
            "amount_off": amount_off,
            "created": now(),
            "currency": params.get("currency"),
            "duration": duration,
            "duration_in_months": months,
            "livemode": False,
            "max_redemptions": params.get("max_redemptions"),
            "metadata": {},
            "name": params.get("name"),
            "percent_off": float(percent_off) if isinstance(percent_off, Decimal) else None,
            "redeem_by": redeem_by,
            "times_redeemed": 0,
            "valid": True,
        }
        apply_metadata(obj, params)
        store.put(self.name, obj)
        return obj

    def update(self, obj: Obj, params: dict[str, object], store: Store) -> Obj:
        if "name" in params:
            obj["name"] = params["name"]
        apply_metadata(obj, params)
        return obj
