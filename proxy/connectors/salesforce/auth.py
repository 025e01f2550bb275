"""Salesforce access tokens: a static one, or one obtained (and obtained again when
Salesforce says the session expired) with the OAuth 2.0 refresh-token flow.

Concurrent requests that all see INVALID_SESSION_ID refresh once: whoever takes the
lock first refreshes, the others find a newer token than the one that failed.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from ..base import ApiError, ErrorKind
from .settings import SalesforceSettings

log = logging.getLogger(__name__)
TOKEN_PATH = "/services/oauth2/token"


class TokenSource:
    def __init__(self, settings: SalesforceSettings) -> None:
        self._settings = settings
        self._token = settings.token.get_secret_value() if settings.token else None
        self._lock = asyncio.Lock()
        self._login = httpx.AsyncClient(
            base_url=settings.login_url,
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
        )

    async def aclose(self) -> None:
        await self._login.aclose()

    async def token(self) -> str:
        if self._token is None:
            await self.refresh(None)
        assert self._token is not None
        return self._token

    async def refresh(self, failed: str | None) -> bool:
        """Get a new access token unless one newer than ``failed`` is already held;
        False when this connector cannot refresh (a static token only)."""
        if not self._settings.refreshes:
            return False
        async with self._lock:
            if self._token is not None and self._token != failed:
                return True
            self._token = await self._exchange()
            log.info("salesforce: obtained a new access token")
            return True

    async def _exchange(self) -> str:
        settings = self._settings
        assert settings.client_id and settings.client_secret and settings.refresh_token
        form = {
            "grant_type": "refresh_token",
            "client_id": settings.client_id.get_secret_value(),
            "client_secret": settings.client_secret.get_secret_value(),
            "refresh_token": settings.refresh_token.get_secret_value(),
        }
        try:
            response = await self._login.post(TOKEN_PATH, data=form)
        except httpx.TransportError as exc:
            raise ApiError(
                ErrorKind.UNAVAILABLE, f"Salesforce login unreachable: {exc!r}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.is_success and isinstance(token, str) and token:
            return token
        reason = (
            body.get("error_description") or body.get("error") if isinstance(body, dict) else None
        )
        raise ApiError(
            ErrorKind.AUTH if response.status_code < 500 else ErrorKind.UNAVAILABLE,
            f"Salesforce refused the refresh token: {reason or f'HTTP {response.status_code}'}",
            http_status=response.status_code,
            vendor_code=str(body.get("error"))
            if isinstance(body, dict) and body.get("error")
            else None,
        )
