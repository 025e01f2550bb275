"""Price parameter schemas, apart from prices.py so products.py can take a product's
`default_price_data` without importing the price logic at module load."""

from __future__ import annotations

from decimal import Decimal

from .params import Field, string

INTERVALS = ("day", "week", "month", "year")
TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")

RECURRING = Field(
    "object",
    fields={
        "interval": Field("enum", required=True, choices=INTERVALS),
        "interval_count": Field("integer", minimum=1),
        "usage_type": Field("enum", choices=("licensed", "metered")),
        "aggregate_usage": Field("enum", choices=("last_during_period", "last_ever", "max", "sum")),
        "meter": string(),
        "trial_period_days": Field("integer", minimum=0),
    },
)
CUSTOM_UNIT_AMOUNT = Field(
    "object",
    fields={
        "enabled": Field("boolean", required=True),
        "maximum": Field("integer", minimum=0),
        "minimum": Field("integer", minimum=0),
        "preset": Field("integer", minimum=0),
    },
)
UNIT_AMOUNT = Field("integer", minimum=0)
UNIT_AMOUNT_DECIMAL = Field("decimal", minimum=Decimal(0))
TAX_BEHAVIOR = Field("enum", choices=TAX_BEHAVIORS)
CURRENCY_OPTIONS = Field(
    "map",
    item=Field(
        "object",
        fields={
            "custom_unit_amount": CUSTOM_UNIT_AMOUNT,
            "tax_behavior": TAX_BEHAVIOR,
            "unit_amount": UNIT_AMOUNT,
            "unit_amount_decimal": UNIT_AMOUNT_DECIMAL,
        },
    ),
)
# A product's `default_price_data` (the price is created with the product).
DEFAULT_PRICE_DATA = Field(
    "object",
    fields={
        "currency": Field("currency", required=True),
        "currency_options": CURRENCY_OPTIONS,
        "custom_unit_amount": CUSTOM_UNIT_AMOUNT,
        "metadata": Field("metadata"),
        "recurring": Field(
            "object",
            fields={
                "interval": Field("enum", required=True, choices=INTERVALS),
                "interval_count": Field("integer", minimum=1),
            },
        ),
        "tax_behavior": TAX_BEHAVIOR,
        "unit_amount": UNIT_AMOUNT,
        "unit_amount_decimal": UNIT_AMOUNT_DECIMAL,
    },
)
