"""Stripe (customers, products, prices, coupons), form-encoded, idempotency keys."""

from .connector import StripeConnector
from .settings import StripeSettings

__all__ = ["StripeConnector", "StripeSettings"]
