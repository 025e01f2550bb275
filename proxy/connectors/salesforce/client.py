"""HTTP to Salesforce: the shared layer (`..http`) with Salesforce's auth, errors and
waits. Salesforce's rules: INVALID_SESSION_ID (401) gets a fresh token and the request
once more (nothing was applied); REQUEST_LIMIT_EXCEEDED (403) is the org's 24-hour
allowance and is not retried; UNABLE_TO_LOCK_ROW waits and is retried (the record was
not written)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from ..base import ApiError, ErrorKind
from ..http import VendorHttp, retry_after
from ..retry import Retryable
from .auth import TokenSource
from .errors import parse_errors
from .settings import SalesforceSettings

REQUEST_ID_HEADER = "x-request-id"


class SalesforceClient(VendorHttp):
    vendor = "Salesforce"
    request_id_header = REQUEST_ID_HEADER

    def __init__(self, settings: SalesforceSettings) -> None:
        super().__init__(settings)
        self._settings = settings
        self._tokens = TokenSource(settings)
        self._sent_token: str | None = None
        self.base = f"/services/data/{settings.api_version}"

    async def aclose(self) -> None:
        await super().aclose()
        await self._tokens.aclose()

    async def auth_headers(self) -> Mapping[str, str]:
        self._sent_token = await self._tokens.token()
        return {"Authorization": f"Bearer {self._sent_token}"}

    async def reauthenticate(self, error: ApiError) -> bool:
        if error.vendor_code not in ("INVALID_SESSION_ID", None):
            return False
        return await self._tokens.refresh(self._sent_token)

    def parse_error(
        self, status: int, body: object, *, object_type: str, correlation_id: str | None
    ) -> ApiError:
        return parse_errors(status, body, correlation_id=correlation_id)

    def classify(
        self, response: httpx.Response, body: object, error: ApiError, idempotent: bool
    ) -> Exception:
        if error.kind is ErrorKind.LOCKED:
            return Retryable(
                error, max(retry_after(response.headers), self._settings.locked_wait_s)
            )
        if error.kind is ErrorKind.RATE_LIMITED:
            return error  # the org's daily allowance: waiting seconds will not help
        return super().classify(response, body, error, idempotent)
