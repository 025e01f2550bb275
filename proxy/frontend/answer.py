"""The one place where a synced write's outcome becomes wire bytes for the client."""

from __future__ import annotations

from proxy.wire.codes import Backend
from proxy.wire.framing import message
from proxy.wire.messages.command_complete import command_complete
from proxy.wire.messages.error_response import PgError
from proxy.writes.outcome import Failure, Outcome, StatementError

_ROW_DESCRIPTION = Backend.ROW_DESCRIPTION.byte
_DATA_ROW = Backend.DATA_ROW.byte
_ERROR = Backend.ERROR_RESPONSE.byte


def encode_error(error: StatementError) -> bytes:
    if isinstance(error, PgError):
        return error.encode()
    return message(_ERROR, error.body)


def encode_outcome(outcome: Outcome, describe: bool) -> bytes:
    """Rows (with their description for a simple Query) and the tag, or the error."""
    if isinstance(outcome, Failure):
        return encode_error(outcome.error)
    parts = []
    if describe and outcome.row_description is not None:
        parts.append(message(_ROW_DESCRIPTION, outcome.row_description))
    parts.extend(message(_DATA_ROW, row) for row in outcome.raw_rows)
    parts.append(command_complete(outcome.tag))
    return b"".join(parts)
