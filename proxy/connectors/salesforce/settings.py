"""Salesforce connector settings: the instance, the API version, and either a static
access token or an OAuth refresh token the proxy exchanges for access tokens."""

from __future__ import annotations

import re
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from ..http import HttpSettings

_VERSION = re.compile(r"^v\d{2,3}\.0$")


class SalesforceSettings(HttpSettings):
    base_url: str = Field(description="the org's instance URL, e.g. https://acme.my.salesforce.com")
    api_version: str = "v61.0"
    token: SecretStr | None = None
    login_url: str = "https://login.salesforce.com"
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    # sObject Collections take at most 200 records per request.
    batch_size: int = Field(default=200, ge=1, le=200)
    # UNABLE_TO_LOCK_ROW: another transaction holds the record; wait, then retry.
    locked_wait_s: float = Field(default=1.0, ge=0)
    # Salesforce meters API calls per 24 h (org-wide) and caps concurrent long
    # requests; this pacing only smooths bursts.
    rate_limit_requests: int = Field(default=25, ge=1)
    rate_limit_interval_s: float = Field(default=1.0, gt=0)

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError("must look like v61.0")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        if any(oauth) and not all(oauth):
            raise ValueError(
                "OAuth refresh needs client_id_env, client_secret_env and refresh_token_env"
            )
        if self.token is None and not all(oauth):
            raise ValueError(
                "set token_env (a static access token) or client_id_env, "
                "client_secret_env and refresh_token_env (OAuth refresh)"
            )
        return self

    @property
    def refreshes(self) -> bool:
        return self.refresh_token is not None
