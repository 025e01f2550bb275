"""What the executor checks between the steps of a synced write, and the refusals a
statement then fails with (each before the vendor call, or undone by the journal when
the vendor was already called). Apart from ``executor`` so that its step-by-step flow
reads on its own."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from proxy.backend.channel import Result
from proxy.connectors.base import ApiError
from proxy.guard import is_pending_id
from proxy.wire.messages.error_response import PgError
from proxy.writes.ledger import DeferredArchive, TxLedger
from proxy.writes.outcome import ApiChange
from proxy.writes.plan import Unsupported, WritePlan, assigned_error

Image = dict[str, Any]
QUERY_CANCELED = "57014"
READ_ONLY_TRANSACTION = "25006"


class Cancelled(Exception):
    """The client cancelled the statement, or its statement_timeout passed, while the
    vendor answered: the vendor call is not interrupted (its outcome would be unknown);
    its effect is undone and the statement fails as PostgreSQL's would."""

    def __init__(self, timeout: bool) -> None:
        super().__init__()
        self.timeout = timeout

    def error(self, plan: WritePlan) -> PgError:
        cause = "statement timeout" if self.timeout else "user request"
        return PgError(QUERY_CANCELED, f"canceling statement due to {cause}")


class ReadOnly(Exception):
    """PostgreSQL's own refusal, before anything is run."""

    def error(self, plan: WritePlan) -> PgError:
        return PgError(
            READ_ONLY_TRANSACTION,
            f"cannot execute {plan.kind.upper()} in a read-only transaction",
        )


class ArchivedAtCommit(Exception):
    """The statement's row is an object this transaction deleted (its email, or the
    vendor matched it by email to that object): the object is archived only at
    COMMIT, so the row would point to nothing. Fails as the re-insert of a unique value
    still held would — before the API call when the key shows it, else the vendor
    change is undone."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what

    def error(self, plan: WritePlan) -> PgError:
        return PgError(
            "23505",
            f"the vendor object of {self.what} this statement would write to "
            f"{plan.table.display} was deleted earlier in this transaction",
            detail="Deleted objects are archived at the vendor at COMMIT; until then "
            "their unique values (an email) are still taken.",
            hint="Commit the DELETE first, or UPDATE the row instead of deleting it.",
            extra={"schema_name": plan.table.schema, "table_name": plan.table.name},
        )


class ArchivedElsewhere(Exception):
    """An upsert matched vendor objects by key that another transaction deleted: its
    archive is on its way (sent after that transaction's COMMIT, or before it while
    this statement waited for its row lock), so the rows would point to archived
    objects. Fails as a serialization failure: a retry creates new objects."""

    def __init__(self, ids: Sequence[str]) -> None:
        super().__init__(", ".join(ids))
        self.ids = tuple(ids)

    def error(self, plan: WritePlan) -> PgError:
        table = plan.table
        return PgError(
            "40001",
            f"could not serialize access: {table.object_type} {', '.join(self.ids)}, which "
            f"this statement matched by {plan.conflict.key_column if plan.conflict else 'key'}"
            f", was deleted from {table.display} by a concurrent transaction",
            detail="Its archive at the vendor is on its way; the vendor matched the object "
            "before it landed.",
            hint="Retry the statement: it then creates a new object.",
            extra={"schema_name": table.schema, "table_name": table.name},
        )


def deferred_of(plan: WritePlan, ledger: TxLedger) -> list[DeferredArchive]:
    """The transaction's pending archives of the statement's kind of object."""
    table = plan.table
    return [
        archive
        for archive in ledger.deferred
        if archive.connector == table.connector and archive.object_type == table.object_type
    ]


def check_not_archived(plan: WritePlan, ledger: TxLedger, change: ApiChange) -> None:
    if plan.kind != "insert" or plan.table.ends is not None:
        return
    pending = {i for archive in deferred_of(plan, ledger) for i in archive.ids}
    for row in change.payload:
        ident = row.get(plan.table.id_column) if isinstance(row, dict) else None
        if ident is not None and str(ident) in pending:
            raise ArchivedAtCommit(f"id {ident}")


def check_keys_not_archived(plan: WritePlan, ledger: TxLedger, new: list[Image]) -> None:
    """Before the API call: a new row whose unique key (email) belongs to an object
    this transaction deleted."""
    if plan.kind != "insert" or not plan.table.upsert_keys:
        return
    pending = {key for archive in deferred_of(plan, ledger) for key in archive.keys}
    if not pending:
        return
    for row in new:
        for column in plan.table.upsert_keys:
            value = row.get(column)
            if value is not None and str(value).casefold() in pending:
                raise ArchivedAtCommit(f"{column} {value}")


def check_cancelled(ledger: TxLedger, started: float, timeout_s: float) -> None:
    if ledger.cancel_requested:
        raise Cancelled(timeout=False)
    if timeout_s > 0 and time.monotonic() - started > timeout_s:
        raise Cancelled(timeout=True)


def check_rejoined(plan: WritePlan, old: list[Image], new: list[Image]) -> None:
    """UPDATE ... FROM re-evaluates its join in the dry run: it must update exactly the
    rows that were locked, or the vendor and the table would disagree."""
    id_column = plan.table.id_column
    if {str(r[id_column]) for r in old} != {str(r[id_column]) for r in new}:
        raise Unsupported(
            f"the FROM list of this UPDATE of {plan.table.display} matched other rows when "
            "evaluated again (its tables changed meanwhile, or it is volatile)",
            "Retry the statement; or select the ids first and UPDATE ... WHERE id IN (...).",
        )


def check_applied(plan: WritePlan, change: ApiChange, applied: Result) -> None:
    """The local apply must change exactly the rows the vendor was told about."""
    expected = len(change.payload)
    count = applied.tag.rsplit(" ", 1)[-1]
    if not count.isdigit() or int(count) == expected:
        return
    raise Unsupported(
        f"the local {plan.kind.upper()} of {plan.table.display} changed {count} rows where "
        f"{expected} were locked and sent to the vendor (a row-level security policy?)",
        "Give the role policies that let it change every row it can lock (FOR UPDATE).",
    )


def failed_value(plan: WritePlan, error: ApiError, new: list[Image]) -> object | None:
    """The value of the column the vendor blamed, in the row that failed (plain INSERT
    and UPDATE send rows in statement order, so the vendor's index is the row's)."""
    column = plan.table.column_of(error.column) if error.column else None
    index = error.input_index
    if column is None or index is None or plan.conflict is not None or index >= len(new):
        return None
    return new[index].get(column)


def refuse_supplied_values(plan: WritePlan, row: Image) -> None:
    """The API assigns the id and the read-only columns: an INSERT that gives one of
    them a value (even positionally) is refused; naming it with NULL/DEFAULT is fine
    (the id then holds the guard's placeholder)."""
    table = plan.table
    named = plan.insert_columns or tuple(c.name for c in table.columns)
    for column in named:
        if column == table.id_column:
            if not is_pending_id(row.get(column)):
                raise assigned_error(table, column)
        elif column in table.read_only and row.get(column) is not None:
            raise assigned_error(table, column)


def unique_rows(rows: list[Image], plan: WritePlan) -> list[Image]:
    """UPDATE ... FROM / DELETE ... USING may join a target row more than once."""
    table = plan.table
    seen: dict[Any, Image] = {}
    for row in rows:
        if table.ends is None:
            key = row[table.id_column]
        else:  # an association row is identified by its pair
            key = (row[table.ends[0][0]], row[table.ends[1][0]])
        seen.setdefault(key, row)
    return list(seen.values())
