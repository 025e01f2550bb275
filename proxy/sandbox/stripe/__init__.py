"""A stateful, local emulator of Stripe's API (customers, products, prices, coupons) with
Stripe's form encoding, errors and idempotency, plus `/_sandbox/` endpoints to inspect it,
switch latency and rate limits, and inject faults."""

from .app import build_app
from .config import RateLimitConfig, StripeSandboxConfig, Switches

__all__ = ["RateLimitConfig", "StripeSandboxConfig", "Switches", "build_app"]
