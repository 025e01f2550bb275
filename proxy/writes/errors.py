"""Vendor and planning errors as the PostgreSQL errors a client sees (the README's
SQLSTATE table)."""

from __future__ import annotations

from proxy.connectors.base import ApiError, ErrorKind
from proxy.wire.messages.error_response import PgError
from proxy.writes.plan import Unsupported
from proxy.writes.tables import SyncedTable


def api_error(error: ApiError, table: SyncedTable, value: object | None = None) -> PgError:
    """The error a client sees for a vendor rejection.

    A duplicate also names the local unique constraint and starts DETAIL the way
    PostgreSQL does (``Key (email)=(…) already exists.``), which ORMs parse."""
    extra = {"schema_name": table.schema, "table_name": table.name}
    column = table.column_of(error.column) if error.column else None
    detail = error.detail
    if column:
        extra["column_name"] = column
        constraint = table.unique_constraints.get(column)
        if error.kind is ErrorKind.DUPLICATE and constraint is not None:
            extra["constraint_name"] = constraint
            if value is not None:
                detail = f"Key ({column})=({value}) already exists. {detail}"
    return PgError(
        error.sqlstate, error.message, detail=detail or None, hint=error.hint, extra=extra
    )


def unsupported_error(error: Unsupported) -> PgError:
    return PgError("0A000", str(error), hint=error.hint)
