"""What executing a synced write produces: results and typed errors, never wire bytes
(the frontend encodes them, in ``proxy.frontend.answer``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from proxy.wire.messages.error_response import PgError
from proxy.writes.ledger import DeferredArchive

Compensation = Callable[[], Awaitable[None]]


@dataclass
class ApiChange:
    """What the API accepted: the rows to apply locally and how to undo it."""

    payload: list[Any]
    undo: Compensation | None = None
    #: A DELETE's archive, for the vendor at COMMIT time.
    deferred: DeferredArchive | None = None
    #: Ids of objects the vendor already had that an upsert matched by key and this
    #: statement inserts as new local rows (another transaction may be archiving them).
    adopted: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UpstreamError:
    """PostgreSQL's own ErrorResponse, relayed verbatim (its raw body)."""

    body: bytes


StatementError = PgError | UpstreamError


@dataclass
class Success:
    row_description: bytes | None  # PostgreSQL's RowDescription body, when rows return
    raw_rows: list[bytes]  # PostgreSQL's DataRow bodies, in the client's formats
    tag: str  # PostgreSQL's CommandComplete tag
    status: int  # transaction status after the statement
    #: What the API accepted, for compensation if the enclosing transaction fails.
    change: ApiChange | None = None


@dataclass
class Failure:
    error: StatementError
    status: int


Outcome = Success | Failure
