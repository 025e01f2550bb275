"""Salesforce's rendering of an injected fault (the fault book itself is shared).

A fault's `body` is sent as given when it is a list. A dict is shorthand for one error:
`{"errorCode": "UNABLE_TO_LOCK_ROW"}` becomes `[{"errorCode": "UNABLE_TO_LOCK_ROW",
"message": "unable to obtain exclusive access to this record"}]` (known codes get their
real message). With no body, the status picks the error; a bare
400 is a row lock, the transient 400 Salesforce clients are expected to retry. OAuth
faults answer dict bodies as they are, since the token endpoint speaks OAuth's shape.
"""

from __future__ import annotations

from ..common.faults import FaultSpec

MESSAGES = {
    "UNABLE_TO_LOCK_ROW": "unable to obtain exclusive access to this record",
    "SERVER_UNAVAILABLE": "Server temporarily unavailable",
    "UNKNOWN_EXCEPTION": (
        "An unexpected error occurred. Please include this ErrorId if you contact "
        "support: 1962870357-12345 (-1234567890)"
    ),
    "INVALID_SESSION_ID": "Session expired or invalid",
    "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
    "NOT_FOUND": "The requested resource does not exist",
    "REQUEST_RUNNING_TOO_LONG": "Your request was running for too long, and has been stopped.",
    "CONCURRENT_REQUESTS_LIMIT_EXCEEDED": (
        "ConcurrentRequests (Concurrent API Requests) Limit exceeded."
    ),
}
_BY_STATUS = {
    400: "UNABLE_TO_LOCK_ROW",
    401: "INVALID_SESSION_ID",
    403: "REQUEST_LIMIT_EXCEEDED",
    404: "NOT_FOUND",
    500: "UNKNOWN_EXCEPTION",
    502: "SERVER_UNAVAILABLE",
    503: "SERVER_UNAVAILABLE",
    504: "REQUEST_RUNNING_TOO_LONG",
}


def fault_body(spec: FaultSpec, *, oauth: bool = False) -> object:
    if isinstance(spec.body, list) or (oauth and isinstance(spec.body, dict)):
        return spec.body
    status = spec.status or 500
    given = dict(spec.body or {})
    code = str(given.get("errorCode") or _BY_STATUS.get(status, "UNKNOWN_EXCEPTION"))
    message = MESSAGES.get(code, f"Injected fault: HTTP {status}")
    return [{"message": message, "errorCode": code} | given]
