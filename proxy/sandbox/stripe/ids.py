"""Stripe-looking identifiers: a type prefix and random base62 (`cus_NffrFeUfNV2Hib`)."""

from __future__ import annotations

import secrets
import string

_BASE62 = string.digits + string.ascii_letters
_UPPER = string.ascii_uppercase + string.digits


def base62(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def new_id(prefix: str, length: int = 14) -> str:
    return f"{prefix}_{base62(length)}"


def request_id() -> str:
    return new_id("req", 14)


def invoice_prefix() -> str:
    """Stripe's generated customer invoice prefixes: 8 upper-case letters and digits."""
    return "".join(secrets.choice(_UPPER) for _ in range(8))
