"""Vendor connectors behind one interface (`base.Connector`), built by kind."""

from __future__ import annotations

from collections.abc import Callable

from .base import Connector
from .hubspot import HubSpotConnector, HubSpotSettings


def _hubspot(**settings: object) -> Connector:
    return HubSpotConnector(HubSpotSettings.model_validate(settings))


_FACTORIES: dict[str, Callable[..., Connector]] = {"hubspot": _hubspot}


def build_connector(kind: str, **settings: object) -> Connector:
    """A connector for `kind` (e.g. "hubspot"), configured by keyword settings."""
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise ValueError(f"unknown connector kind {kind!r}; known kinds: {sorted(_FACTORIES)}")
    return factory(**settings)


__all__ = ["build_connector"]
