"""Stripe's error envelope, `{"error": {type, code, param, message, doc_url, ...}}`, and
the errors the sandbox raises. Messages follow the wording Stripe's API answers with,
because clients (and the proxy's connector) match on type, code and param."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

_SUPPORT = "https://support.stripe.com/"


@dataclass(eq=False)
class StripeError(Exception):
    """An error response; raised anywhere below a route and rendered by the app."""

    status: int
    type: str
    message: str
    code: str | None = None
    param: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    # `Stripe-Should-Retry`; None sends no header (Stripe's "can't tell").
    should_retry: bool | None = None
    # Errors from a route carry a dashboard log link; gateway refusals (401, 429) do not.
    logged: bool = True

    def __str__(self) -> str:
        return f"{self.status} {self.type}: {self.message}"

    def body(self, request_id: str) -> dict[str, object]:
        error: dict[str, object] = {"type": self.type}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        error["message"] = self.message
        if self.logged:
            error["request_log_url"] = (
                f"https://dashboard.stripe.com/test/logs/{request_id}?t={int(time.time())}"
            )
        error.update(self.extra)
        return {"error": error}


def invalid(
    message: str, param: str | None = None, code: str | None = None, status: int = 400
) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code, param, should_retry=False)


def parameter_unknown(name: str) -> StripeError:
    return invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")


def parameter_missing(name: str) -> StripeError:
    return invalid(f"Missing required param: {name}.", name, "parameter_missing")


def parameter_invalid_empty(name: str) -> StripeError:
    return invalid(
        f"You passed an empty string for '{name}'. We assume empty values are an attempt to "
        f"unset a parameter; however '{name}' cannot be unset. You should remove '{name}' "
        "from your request or supply a non-empty value.",
        name,
        "parameter_invalid_empty",
    )


def only_one_of(*names: str) -> StripeError:
    return invalid(f"You may only specify one of these parameters: {', '.join(names)}.", names[0])


def resource_missing(
    label: str, object_id: str, param: str = "id", status: int = 404
) -> StripeError:
    """`status` is 404 for the object in the URL, 400 for one named by a parameter."""
    return invalid(f"No such {label}: '{object_id}'", param, "resource_missing", status)


def unrecognized_url(method: str, path: str) -> StripeError:
    return invalid(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        f"or we can help at {_SUPPORT}.",
        status=404,
    )


def unauthorized(given: str | None) -> StripeError:
    if not given:
        message = (
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
            f"or we can help at {_SUPPORT}."
        )
    else:
        message = f"Invalid API Key provided: {redact_key(given)}"
    return StripeError(401, "invalid_request_error", message, logged=False)


def redact_key(key: str) -> str:
    """Stripe keeps a key's mode prefix and last four characters: `sk_test_****wxyz`."""
    head = ""
    for prefix in ("sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_"):
        if key.startswith(prefix):
            head, key = prefix, key[len(prefix) :]
            break
    if len(key) <= 4:
        return head + "*" * len(key)
    return head + "*" * (len(key) - 4) + key[-4:]


def rate_limited() -> StripeError:
    return StripeError(
        429,
        "invalid_request_error",
        "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        "rate_limit",
        should_retry=True,
        logged=False,
    )


def lock_timeout() -> StripeError:
    return StripeError(
        409,
        "invalid_request_error",
        "This object cannot be accessed right now because another API request or Stripe "
        "process is currently accessing it. If you see this error intermittently, retry the "
        "request. If you see this error frequently and are making multiple concurrent "
        "requests to a single object, make your requests serially or at a lower rate. See "
        "https://stripe.com/docs/rate-limits for more details.",
        "lock_timeout",
        should_retry=True,
    )


def api_error(status: int = 500) -> StripeError:
    return StripeError(
        status,
        "api_error",
        "An unknown error occurred while processing your request. If this problem persists, "
        f"please contact us at {_SUPPORT}.",
        should_retry=True,
    )


def card_declined() -> StripeError:
    return StripeError(
        402,
        "card_error",
        "Your card was declined.",
        "card_declined",
        extra={"decline_code": "generic_decline"},
        should_retry=False,
    )


def idempotency_mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "idempotency_error",
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
        should_retry=False,
    )


def idempotency_in_use(key: str) -> StripeError:
    return StripeError(
        409,
        "idempotency_error",
        "There is currently another in-progress request using this Idempotent Key (that "
        "probably means you submitted twice, and the other request is still going "
        f"through): {key}. Please try again later.",
        "idempotency_key_in_use",
        should_retry=True,
    )


def idempotency_key_too_long(length: int) -> StripeError:
    return StripeError(
        400,
        "idempotency_error",
        f"Idempotency keys can be at most 255 characters long (this one has {length}).",
        should_retry=False,
    )


def invalid_version(version: str) -> StripeError:
    return invalid(f"Invalid Stripe API version: {version}")
