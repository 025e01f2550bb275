"""A stateful, local emulator of Salesforce's REST API (OAuth refresh-token flow,
describe, sObject rows, upsert by external id, sObject Collections, SOQL query and
queryAll), with `/_sandbox/` endpoints to inspect it, flip switches and inject faults."""

from .app import build_app
from .config import (
    CustomObjectSpec,
    FieldSpec,
    RateLimit,
    SalesforceSandboxConfig,
    Switches,
    ValidationRule,
)

__all__ = [
    "CustomObjectSpec",
    "FieldSpec",
    "RateLimit",
    "SalesforceSandboxConfig",
    "Switches",
    "ValidationRule",
    "build_app",
]
