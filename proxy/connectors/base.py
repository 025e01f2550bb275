"""The vendor-neutral contract between the write executor and a vendor connector.

A connector turns row images into vendor API calls and vendor answers into row values
and typed errors. Multi-row calls are split into vendor batches by the connector; each
batch is announced to the caller's `CallHooks` before it is sent and after it is
answered, so the executor can journal every call durably before it happens.

Compensation when a multi-row call fails part-way (the first failure is raised, with
`input_index` naming its row):
* objects the call created (creates, and upserts that created) are archived by the
  connector; those archive calls are announced with `compensation=True`.
* old values it never saw cannot be restored by the connector: ids it updated are
  listed in `ApiError.applied` (as are created ids whose archive failed), and the caller
  restores them from its old row images. When `retry_safe` is False the failing call
  itself may also have been applied: its inputs are in the announced `VendorCall`.
* archive is not undoable through the API: callers defer it to commit time.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from .mapping import ObjectMapping, TableShape

if TYPE_CHECKING:
    from .ratelimit import RateBudget


class ErrorKind(StrEnum):
    DUPLICATE = "duplicate"
    NOT_NULL = "not_null"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_PROPERTY = "unknown_property"
    READ_ONLY_PROPERTY = "read_only_property"
    NOT_FOUND = "not_found"
    FOREIGN_KEY = "foreign_key"
    LOCKED = "locked"
    IDEMPOTENCY = "idempotency"
    AUTH = "auth"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    OUTCOME_UNKNOWN = "outcome_unknown"
    UNSUPPORTED = "unsupported"


SQLSTATE: dict[ErrorKind, str] = {
    ErrorKind.DUPLICATE: "23505",  # unique_violation
    ErrorKind.NOT_NULL: "23502",  # not_null_violation
    ErrorKind.INVALID_VALUE: "23514",  # check_violation
    ErrorKind.UNKNOWN_PROPERTY: "42703",  # undefined_column
    ErrorKind.READ_ONLY_PROPERTY: "42501",  # insufficient_privilege
    ErrorKind.NOT_FOUND: "P0002",  # no_data_found
    ErrorKind.FOREIGN_KEY: "23503",  # foreign_key_violation
    ErrorKind.LOCKED: "55P03",  # lock_not_available
    ErrorKind.IDEMPOTENCY: "55000",  # object_not_in_prerequisite_state
    ErrorKind.AUTH: "28000",  # invalid_authorization_specification
    ErrorKind.FORBIDDEN: "42501",  # insufficient_privilege
    ErrorKind.RATE_LIMITED: "53400",  # configuration_limit_exceeded
    ErrorKind.UNAVAILABLE: "57P03",  # cannot_connect_now
    ErrorKind.OUTCOME_UNKNOWN: "08007",  # transaction_resolution_unknown
    ErrorKind.UNSUPPORTED: "0A000",  # feature_not_supported
}

_HINTS: dict[ErrorKind, str] = {
    ErrorKind.RATE_LIMITED: "The vendor's rate limit was reached; nothing was applied, so the "
    "statement is safe to retry later.",
    ErrorKind.UNAVAILABLE: "The vendor API is unavailable; retry the statement later.",
    ErrorKind.OUTCOME_UNKNOWN: "The vendor's answer was lost, so nothing was written locally. "
    "writeproxy's journal finds out what the vendor applied and undoes it within seconds; "
    "the statement is then safe to retry.",
    ErrorKind.AUTH: "Check the API token configured for this synced table.",
    ErrorKind.FORBIDDEN: "The API token lacks a scope needed for this write.",
    ErrorKind.IDEMPOTENCY: "The vendor refused the request's idempotency key (it was used "
    "for another request); nothing was applied by this one.",
    ErrorKind.LOCKED: "The vendor kept the record locked; nothing was applied, so the "
    "statement is safe to retry.",
}


@dataclass(eq=False)
class ApiError(Exception):
    """A vendor call that did not succeed, carrying what a Postgres ErrorResponse needs."""

    kind: ErrorKind
    message: str  # the vendor's own message
    http_status: int | None = None
    vendor_request_id: str | None = None  # e.g. HubSpot's correlationId
    vendor_code: str | None = None  # e.g. "CONFLICT", "PROPERTY_DOESNT_EXIST"
    column: str | None = None  # the property the vendor blamed, when it named one
    existing_id: str | None = None  # the conflicting object, for duplicates
    retry_safe: bool = True  # True: the vendor definitely did not apply anything
    input_index: int | None = None  # which of the caller's rows failed, when known
    # Objects this call changed and did not undo; the caller must compensate them.
    applied: tuple[str, ...] = ()
    advice: str | None = None  # a HINT that replaces the kind's default one
    #: This input failed only because another one did (an all-or-none batch rolled
    #: back): never reported as the statement's cause when the cause is known.
    consequential: bool = False

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def sqlstate(self) -> str:
        return SQLSTATE[self.kind]

    @property
    def detail(self) -> str:
        parts = []
        if self.existing_id is not None:
            parts.append(f"Existing object id: {self.existing_id}.")
        if self.input_index is not None:
            parts.append(f"Failed row: {self.input_index + 1}.")
        if self.applied:
            parts.append(f"Left applied: {', '.join(self.applied)}.")
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}.")
        if self.vendor_request_id:
            parts.append(f"Vendor request id: {self.vendor_request_id}.")
        return " ".join(parts)

    @property
    def hint(self) -> str | None:
        return self.advice or _HINTS.get(self.kind)

    def for_row(self, index: int | None, applied: Sequence[str] = ()) -> ApiError:
        """A copy naming the failing row of the caller's call and what stayed applied."""
        return replace(
            self,
            input_index=index,
            applied=tuple(applied),
            retry_safe=self.retry_safe and not applied,
        )


@dataclass(frozen=True)
class ApiObject:
    """A vendor object as the API returned it. Property values are what the local
    column takes (PostgreSQL reads them from JSON): text, numbers, booleans, None,
    lists for array columns, JSON values for json columns — decoded by the connector."""

    id: str
    properties: dict[str, object]
    created_at: str
    updated_at: str
    # Upserts only: True created, False updated, None unknown (an ambiguous first
    # attempt was retried, so it may have been created by that attempt).
    created: bool | None = None


class Operation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"
    ARCHIVE = "archive"
    ASSOCIATE = "associate"
    DISSOCIATE = "dissociate"


@dataclass(frozen=True)
class VendorCall:
    """One vendor request, described before it is sent (the unit the journal records)."""

    operation: Operation
    object_type: str
    # The inputs in the vendor-neutral shape the journal reads: {properties},
    # {id, properties}, {id, idProperty, properties} (upsert by a unique property's
    # value), {id} (archive), {from, to, toObjectType} (associations); property values
    # as the connector encodes them for its wire. Enough to replay or resolve the call.
    inputs: tuple[Mapping[str, object], ...]
    first_index: int = 0  # index of inputs[0] among the caller's rows
    compensation: bool = False
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def trace_id(self, offset: int) -> str:
        """A per-input id unique across calls, echoed back by vendors that support it."""
        return f"{self.call_id}:{self.first_index + offset}"


@dataclass(frozen=True)
class CallOutcome:
    """Per-input results in input order (empty for archives), or a whole-call error."""

    results: tuple[ApiObject | ApiError, ...] = ()
    error: ApiError | None = None


class CallHooks(Protocol):
    async def before_send(self, call: VendorCall) -> None: ...

    async def after_send(self, call: VendorCall, outcome: CallOutcome) -> None: ...


class NoHooks:
    async def before_send(self, call: VendorCall) -> None:
        return None

    async def after_send(self, call: VendorCall, outcome: CallOutcome) -> None:
        return None


Row = Mapping[str, object]


class Connector(Protocol):
    #: The vendor stores an empty string as no value (HubSpot): the row written
    #: locally has NULL where the client wrote '', as the vendor will report it.
    empty_string_is_null: bool
    #: A json/jsonb column is sent as its JSON text (the vendor stores text), rather
    #: than as the JSON value itself (Stripe's metadata and nested objects).
    json_as_text: bool

    async def map_table(self, shape: TableShape) -> ObjectMapping:
        """How a synced table maps to this vendor's object (at startup; may ask the
        vendor, e.g. Salesforce's describe). Raises MappingError."""
        ...

    async def create(
        self, object_type: str, rows: Sequence[Row], *, hooks: CallHooks | None = None
    ) -> list[ApiObject]: ...

    async def update(
        self,
        object_type: str,
        changes: Sequence[tuple[str, Row]],
        *,
        hooks: CallHooks | None = None,
    ) -> list[ApiObject]: ...

    async def upsert(
        self,
        object_type: str,
        id_property: str,
        rows: Sequence[Row],
        *,
        hooks: CallHooks | None = None,
    ) -> list[ApiObject]: ...

    async def archive(
        self, object_type: str, ids: Sequence[str], *, hooks: CallHooks | None = None
    ) -> None: ...

    async def associate(
        self,
        from_type: str,
        to_type: str,
        pairs: Sequence[tuple[str, str]],
        *,
        remove: bool = False,
        hooks: CallHooks | None = None,
    ) -> None: ...

    async def get(
        self,
        object_type: str,
        object_id: str,
        *,
        id_property: str | None = None,
        properties: Sequence[str] | None = None,
    ) -> ApiObject | None: ...

    async def get_many(
        self, object_type: str, values: Sequence[str], *, id_property: str
    ) -> dict[str, ApiObject]:
        """The live objects whose unique ``id_property`` is one of ``values``, keyed by
        the value the vendor holds (in batches, not one call per value)."""
        ...

    async def find_created(
        self,
        call: VendorCall,
        since: datetime,
        *,
        unique_property: str | None = None,
        known: Callable[[Sequence[str]], Awaitable[set[str]]] | None = None,
    ) -> list[ApiObject | None]:
        """Per input of a create/upsert call whose answer was lost: the object the
        vendor holds for it, or None. ``since`` is when the call was journaled;
        ``unique_property`` a property the caller knows to be unique for the object
        type (else the connector's own knowledge); ``known`` tells which object ids
        are certainly not the call's (the synced table's, other entries'). Upserts'
        objects say in ``created`` whether they were created at/after ``since``.
        Never creates anything."""
        ...

    async def aclose(self) -> None: ...

    def use_rate_budget(self, budget: RateBudget, account: str) -> None:
        """Pace this connector's calls against a budget shared across processes."""
        ...


__all__ = [
    "SQLSTATE",
    "ApiError",
    "ApiObject",
    "CallHooks",
    "CallOutcome",
    "Connector",
    "ErrorKind",
    "NoHooks",
    "Operation",
    "Row",
    "VendorCall",
]
