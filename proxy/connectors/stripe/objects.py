"""The Stripe objects a synced table can be (Sequin's Stripe layout: table
``customer`` ↔ ``/v1/customers``), and what Stripe lets a write do with each: which
fields a create may set, which an update may change (the rest are immutable once the
object exists), which Stripe sets itself, and whether it can be deleted at all."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StripeObject:
    table: str
    resource: str  # the path under /v1/
    creatable: frozenset[str]
    updatable: frozenset[str]
    read_only: frozenset[str]
    delete_hint: str | None = None  # None: DELETE works
    #: Fields whose keys Stripe merges on update (a removed key is sent as "").
    merged: frozenset[str] = frozenset({"metadata"})

    @property
    def fields(self) -> frozenset[str]:
        return self.creatable | self.updatable | self.read_only


#: Fields holding unix times (seconds); local columns hold them as timestamps.
UNIX_TIME_FIELDS = frozenset({"created", "updated", "redeem_by"})
#: A customer's fields are all settable at creation and changeable later.
_CUSTOMER_FIELDS = frozenset(
    {
        "address",
        "balance",
        "description",
        "email",
        "invoice_prefix",
        "invoice_settings",
        "metadata",
        "name",
        "next_invoice_sequence",
        "phone",
        "preferred_locales",
        "shipping",
        "tax_exempt",
    }
)
_COMMON_READ_ONLY = frozenset({"object", "created", "livemode"})

OBJECTS = {
    o.table: o
    for o in (
        StripeObject(
            "customer",
            "customers",
            creatable=_CUSTOMER_FIELDS,
            updatable=_CUSTOMER_FIELDS,
            read_only=_COMMON_READ_ONLY
            | {"currency", "default_source", "delinquent", "discount", "test_clock"},
        ),
        StripeObject(
            "product",
            "products",
            creatable=frozenset(
                {
                    "active",
                    "description",
                    "images",
                    "metadata",
                    "name",
                    "package_dimensions",
                    "shippable",
                    "statement_descriptor",
                    "tax_code",
                    "unit_label",
                    "url",
                    "marketing_features",
                }
            ),
            updatable=frozenset(
                {
                    "active",
                    "default_price",
                    "description",
                    "images",
                    "metadata",
                    "name",
                    "package_dimensions",
                    "shippable",
                    "statement_descriptor",
                    "tax_code",
                    "unit_label",
                    "url",
                    "marketing_features",
                }
            ),
            read_only=_COMMON_READ_ONLY | {"updated", "type"},
        ),
        StripeObject(
            "price",
            "prices",
            creatable=frozenset(
                {
                    "active",
                    "billing_scheme",
                    "currency",
                    "custom_unit_amount",
                    "lookup_key",
                    "metadata",
                    "nickname",
                    "product",
                    "recurring",
                    "tax_behavior",
                    "tiers_mode",
                    "transform_quantity",
                    "unit_amount",
                    "unit_amount_decimal",
                }
            ),
            updatable=frozenset({"active", "lookup_key", "metadata", "nickname", "tax_behavior"}),
            read_only=_COMMON_READ_ONLY | {"type"},
            delete_hint="Stripe cannot delete a price: archive it with "
            "UPDATE ... SET active = false.",
        ),
        StripeObject(
            "coupon",
            "coupons",
            creatable=frozenset(
                {
                    "amount_off",
                    "currency",
                    "duration",
                    "duration_in_months",
                    "max_redemptions",
                    "metadata",
                    "name",
                    "percent_off",
                    "redeem_by",
                }
            ),
            updatable=frozenset({"metadata", "name"}),
            read_only=_COMMON_READ_ONLY | {"times_redeemed", "valid"},
        ),
    )
}
BY_RESOURCE = {o.resource: o for o in OBJECTS.values()}
