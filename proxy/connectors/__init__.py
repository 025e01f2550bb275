"""Vendor connectors behind one interface (`base.Connector`), built by kind.

Each kind is a package with its own settings model; `connector_settings` turns a
``[connectors.NAME]`` table into that model at load time, reading every ``*_env`` key
from the environment (``token_env = "HUBSPOT_TOKEN"`` becomes ``token``), so a wrong
key, a bad value or a missing secret is one clear startup error naming the setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr, ValidationError

from .base import Connector
from .http import HttpSettings
from .hubspot import HubSpotConnector, HubSpotSettings


class ConnectorConfigError(ValueError):
    """A connector's configuration is invalid (message names the connector and key)."""


@dataclass(frozen=True)
class Kind:
    settings: type[HttpSettings]
    build: Callable[[Any], Connector]


def _kinds() -> dict[str, Kind]:
    from .salesforce import SalesforceConnector, SalesforceSettings
    from .stripe import StripeConnector, StripeSettings

    return {
        "hubspot": Kind(HubSpotSettings, HubSpotConnector),
        "salesforce": Kind(SalesforceSettings, SalesforceConnector),
        "stripe": Kind(StripeSettings, StripeConnector),
    }


def known_kinds() -> list[str]:
    return sorted(_kinds())


def _kind(kind: str) -> Kind:
    found = _kinds().get(kind)
    if found is None:
        raise ConnectorConfigError(f"unknown connector kind {kind!r}; known kinds: {known_kinds()}")
    return found


def connector_settings(
    name: str, kind: str, options: Mapping[str, object], environ: Mapping[str, str]
) -> HttpSettings:
    """Validate ``[connectors.NAME]`` for its kind, secrets read from ``environ``."""
    spec = _kind(kind)
    resolved: dict[str, object] = {}
    for key, value in options.items():
        if not key.endswith("_env"):
            resolved[key] = value
            continue
        if not isinstance(value, str) or not value:
            raise ConnectorConfigError(
                f"connector {name!r}: {key} must name an environment variable"
            )
        secret = environ.get(value)
        if not secret:
            raise ConnectorConfigError(
                f"connector {name!r}: environment variable {value} ({key}) is not set"
            )
        resolved[key.removesuffix("_env")] = secret
    try:
        return spec.settings.model_validate(resolved)
    except ValidationError as exc:
        raise ConnectorConfigError(
            f"connector {name!r} (kind {kind!r}): {_problems(exc, spec.settings)}"
        ) from None


def _problems(exc: ValidationError, model: type[HttpSettings]) -> str:
    """Each problem as ``key: message``; never the value (it may be a secret)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(part) for part in error["loc"]) or "(settings)"
        field = model.model_fields.get(key)
        if error["type"] == "missing" and field is not None and _is_secret(field.annotation):
            problems.append(f"{key}_env is required (the environment variable holding {key})")
        elif error["type"] == "extra_forbidden":
            problems.append(f"unknown setting {key!r}")
        else:
            problems.append(f"{key}: {error['msg']}")
    return "; ".join(problems)


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or "SecretStr" in repr(annotation)


def build_connector(kind: str, **settings: object) -> Connector:
    """A connector for `kind` (e.g. "hubspot"), configured by keyword settings
    (secrets given directly, e.g. ``token="…"``)."""
    spec = _kind(kind)
    try:
        validated = spec.settings.model_validate(settings)
    except ValidationError as exc:
        raise ConnectorConfigError(
            f"connector kind {kind!r}: {_problems(exc, spec.settings)}"
        ) from None
    return spec.build(validated)


def connector_from(settings: HttpSettings, kind: str) -> Connector:
    return _kind(kind).build(settings)


__all__ = [
    "ConnectorConfigError",
    "build_connector",
    "connector_from",
    "connector_settings",
    "known_kinds",
]
