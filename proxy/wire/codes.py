"""Message type bytes of protocol 3, named.

The same letter means different messages in the two directions ('E' is Execute from
the client and ErrorResponse from the server; 'D' is Describe and DataRow; 'C' is
Close and CommandComplete), so the codes live in two enums and code that looks at a
message says which direction it reads. Members are ints: they compare and hash as the
raw byte does, so ``kind in FRAME_SET`` and ``data[pos] == Frontend.QUERY`` cost
nothing extra.
"""

from __future__ import annotations

from enum import IntEnum


class _Code(IntEnum):
    @property
    def byte(self) -> bytes:
        return bytes((self,))


class Frontend(_Code):
    """Messages a client sends once the session is established."""

    BIND = ord("B")
    CLOSE = ord("C")
    COPY_DATA = ord("d")
    COPY_DONE = ord("c")
    COPY_FAIL = ord("f")
    DESCRIBE = ord("D")
    EXECUTE = ord("E")
    FLUSH = ord("H")
    FUNCTION_CALL = ord("F")
    PARSE = ord("P")
    PASSWORD = ord("p")  # also SASLInitialResponse / SASLResponse
    QUERY = ord("Q")
    SYNC = ord("S")
    TERMINATE = ord("X")


class Backend(_Code):
    """Messages the server sends."""

    AUTHENTICATION = ord("R")
    BACKEND_KEY_DATA = ord("K")
    BIND_COMPLETE = ord("2")
    CLOSE_COMPLETE = ord("3")
    COMMAND_COMPLETE = ord("C")
    COPY_BOTH_RESPONSE = ord("W")
    COPY_DATA = ord("d")
    COPY_DONE = ord("c")
    COPY_IN_RESPONSE = ord("G")
    COPY_OUT_RESPONSE = ord("H")
    DATA_ROW = ord("D")
    EMPTY_QUERY_RESPONSE = ord("I")
    ERROR_RESPONSE = ord("E")
    FUNCTION_CALL_RESPONSE = ord("V")
    NEGOTIATE_PROTOCOL_VERSION = ord("v")
    NO_DATA = ord("n")
    NOTICE_RESPONSE = ord("N")
    NOTIFICATION_RESPONSE = ord("A")
    PARAMETER_DESCRIPTION = ord("t")
    PARAMETER_STATUS = ord("S")
    PARSE_COMPLETE = ord("1")
    PORTAL_SUSPENDED = ord("s")
    READY_FOR_QUERY = ord("Z")
    ROW_DESCRIPTION = ord("T")


#: Server messages that may arrive at any time, not as the answer to a request.
ASYNCHRONOUS = frozenset(
    (Backend.NOTICE_RESPONSE, Backend.NOTIFICATION_RESPONSE, Backend.PARAMETER_STATUS)
)
#: Server messages after which the server waits for the client's COPY data.
COPY_STARTS = frozenset(
    (Backend.COPY_IN_RESPONSE, Backend.COPY_OUT_RESPONSE, Backend.COPY_BOTH_RESPONSE)
)
#: Client messages that PostgreSQL answers with exactly one ReadyForQuery.
SYNC_POINTS = frozenset((Frontend.QUERY, Frontend.SYNC, Frontend.FUNCTION_CALL))
