"""`POST /services/oauth2/token`: the OAuth 2.0 refresh token flow, with Salesforce's
error bodies (`{"error", "error_description"}`, HTTP 400) and its token response,
including the real `signature` (base64 HMAC-SHA256 of id + issued_at, keyed with the
client secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .ids import ORG_ID, USER_ID
from .web import sandbox

IDENTITY_URL = f"https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"


def _oauth_error(error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def token(request: Request) -> Response:
    state = sandbox(request)
    config = state.config
    # Salesforce reads the parameters from the form body, or from the query string.
    params = dict(request.query_params)
    params.update(parse_qsl((await request.body()).decode("utf-8", "replace")))
    if params.get("grant_type") != "refresh_token":
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    if not _same(params.get("client_id"), config.client_id):
        return _oauth_error("invalid_client_id", "client identifier invalid")
    if not _same(params.get("client_secret"), config.client_secret):
        return _oauth_error("invalid_client", "invalid client credentials")
    if not _same(params.get("refresh_token"), config.refresh_token):
        return _oauth_error("invalid_grant", "expired access/refresh token")
    issued_at = str(int(time.time() * 1000))
    digest = hmac.new(
        config.client_secret.encode(), (IDENTITY_URL + issued_at).encode(), hashlib.sha256
    ).digest()
    return JSONResponse(
        {
            "access_token": state.tokens.issue(state.switches.token_ttl_s),
            "signature": base64.b64encode(digest).decode(),
            "scope": "api refresh_token",
            "instance_url": str(request.base_url).rstrip("/"),
            "id": IDENTITY_URL,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
    )


routes = [Route("/services/oauth2/token", token, methods=["POST"])]
