"""A stateful, local emulator of HubSpot's CRM v3 API (objects, batches, properties,
associations v4), with `/_sandbox/` endpoints to inspect it and inject faults."""

from .app import build_app
from .config import ObjectTypeSpec, RateLimitConfig, SandboxConfig, Switches
from .schema import PropertyDef

__all__ = [
    "ObjectTypeSpec",
    "PropertyDef",
    "RateLimitConfig",
    "SandboxConfig",
    "Switches",
    "build_app",
]
