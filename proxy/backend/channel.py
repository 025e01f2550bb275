"""The proxy's own conversation with a session's upstream connection.

While a synced write is handled the relay is paused and the proxy talks to the
client's upstream backend itself, inside the client's transaction. Messages that
PostgreSQL may send at any time (notices, notifications, parameter changes) are
still the client's and go straight to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from proxy.backend.params import NO_PARAMS, StatementParams
from proxy.backend.upstream import Capture, UpstreamProtocol
from proxy.wire.codes import ASYNCHRONOUS, Backend
from proxy.wire.encodings import codec_for
from proxy.wire.messages import extended
from proxy.wire.messages.bind import Bind
from proxy.wire.messages.data_row import data_row_values
from proxy.wire.messages.error_response import parse_fields
from proxy.wire.messages.parameter_status import CLIENT_ENCODING, parse_parameter_status
from proxy.wire.messages.parse import Parse

INTERNAL = "writeproxy_internal"
ERROR = Backend.ERROR_RESPONSE
READY = Backend.READY_FOR_QUERY
ACTIVE_SQL_TRANSACTION = "25001"


@dataclass
class Result:
    """What one statement run by the proxy produced."""

    rows: list[list[bytes | None]] = field(default_factory=list)
    raw_rows: list[bytes] = field(default_factory=list)
    row_description: bytes | None = None
    tag: str = ""
    error: bytes | None = None  # the raw ErrorResponse body, to forward verbatim
    status: int = 0  # ReadyForQuery status after the statement

    @property
    def error_fields(self) -> dict[str, str]:
        return parse_fields(self.error) if self.error is not None else {}


class QueryFailed(Exception):
    """An internal statement failed; ``result.error`` is PostgreSQL's ErrorResponse."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.error_fields.get("message", "statement failed"))
        self.result = result


class UpstreamChannel:
    """Send messages to the upstream and read its answers as whole messages."""

    def __init__(
        self,
        upstream: UpstreamProtocol,
        to_client: Callable[[int, bytes], None],
        encoding: str | None = "utf-8",
        on_encoding: Callable[[str | None], None] | None = None,
    ) -> None:
        self._upstream = upstream
        self._capture: Capture = upstream.begin_capture()
        self._to_client = to_client
        #: The Python codec of the session's client_encoding: the proxy's statements
        #: are written, and the rows it reads decoded, in it (None: unsupported).
        self.encoding = encoding
        self._on_encoding = on_encoding
        #: Statements sent ahead whose results have not been read yet.
        self._ahead = 0

    def text(self, raw: bytes) -> str:
        """A text value of a row the proxy reads, in the session's encoding."""
        return raw.decode(self.encoding or "utf-8", "surrogateescape")

    def close(self) -> None:
        self._upstream.end_capture()

    def send(self, data: bytes) -> None:
        assert self._upstream.transport is not None
        self._upstream.transport.write(data)

    async def next(self) -> tuple[int, bytes]:
        """The next message that answers what we sent (async ones go to the client)."""
        while True:
            kind, body = await self._capture.next()
            if kind in ASYNCHRONOUS:
                self._asynchronous(kind, body)
                continue
            return kind, body

    def _asynchronous(self, kind: int, body: bytes) -> None:
        """Relay a message the server may send at any time; follow client_encoding."""
        if kind == Backend.PARAMETER_STATUS:
            name, value = parse_parameter_status(body)
            if name == CLIENT_ENCODING:
                self.encoding = codec_for(value)
                if self._on_encoding is not None:
                    self._on_encoding(self.encoding)
        self._to_client(kind, body)

    async def run(
        self,
        sql: str,
        params: StatementParams = NO_PARAMS,
        result_formats: Sequence[int] = (),
    ) -> Result:
        """Run one statement with the extended protocol, reusing a client's raw
        parameter values when ``params`` carries them, and Sync (we are always inside
        an explicit transaction block here, so Sync does not commit)."""
        await self.drain()
        self.send(self._statement(sql, params, result_formats))
        return await self._collect(Result())

    async def run_many(
        self,
        statements: Sequence[tuple[str, StatementParams]],
        result_formats: Sequence[int] = (),
        formats_for: int = 0,
    ) -> list[Result]:
        """Run statements in one round trip (each with its own Sync, so each has its
        own result; after a failure inside a block the later ones fail with 25P02).
        ``result_formats`` apply to the statement at index ``formats_for``."""
        await self.drain()
        self.send(
            b"".join(
                self._statement(sql, params, result_formats if i == formats_for else ())
                for i, (sql, params) in enumerate(statements)
            )
        )
        return [await self._collect(Result()) for _ in statements]

    def send_ahead(self, sql: str) -> None:
        """Send a statement without waiting for it: its result is read (and checked)
        before the next statement runs, e.g. while the vendor answers meanwhile."""
        self.send(self._statement(sql, NO_PARAMS, ()))
        self._ahead += 1

    async def drain(self, check: bool = True) -> None:
        """Read the results of statements sent ahead; the first failure raises
        (unless ``check`` is off: on a failure path, where they no longer matter)."""
        failed: Result | None = None
        while self._ahead:
            self._ahead -= 1
            result = await self._collect(Result())
            if result.error is not None and failed is None:
                failed = result
        if failed is not None and check:
            raise QueryFailed(failed)

    def _statement(self, sql: str, params: StatementParams, result_formats: Sequence[int]) -> bytes:
        bind = params.bind
        values = bind.values if bind is not None else ()
        formats = bind.param_formats if bind is not None else ()
        # A named statement and portal of the proxy's own, so that the client's unnamed
        # statement survives (closing an absent one is not an error).
        return (
            extended.close_statement(INTERNAL)
            + extended.close_portal(INTERNAL)
            + Parse(INTERNAL, sql, tuple(params.param_types)).encode(self.encoding or "utf-8")
            + Bind(INTERNAL, INTERNAL, formats, values, tuple(result_formats)).encode()
            + extended.describe_portal(INTERNAL)
            + extended.execute(INTERNAL)
            + extended.SYNC
        )

    async def begin_in_pipeline(self) -> Result:
        """BEGIN inside the client's implicit transaction (extended protocol, before
        its Sync), without a Sync of our own, which would commit that transaction: the
        implicit block becomes an explicit one that still holds the statements the
        client ran before. If the client had already sent its own BEGIN in the same
        pipeline, PostgreSQL's "already a transaction in progress" warning is ours,
        not the client's, and is not relayed."""
        await self.drain()
        self.send(
            extended.close_statement(INTERNAL)
            + extended.close_portal(INTERNAL)
            + Parse(INTERNAL, "BEGIN", ()).encode()
            + Bind(INTERNAL, INTERNAL, (), (), ()).encode()
            + extended.execute(INTERNAL)
            + extended.FLUSH
        )
        result = Result()
        while True:
            kind, body = await self._capture.next()
            if kind == Backend.NOTICE_RESPONSE and parse_fields(body).get("sqlstate") == (
                ACTIVE_SQL_TRANSACTION
            ):
                continue
            if kind in ASYNCHRONOUS:
                self._asynchronous(kind, body)
            elif kind == Backend.COMMAND_COMPLETE:
                result.tag = body[:-1].decode()
                return result
            elif kind == ERROR:
                result.error = body
                return result

    async def checked(
        self, sql: str, params: StatementParams = NO_PARAMS, result_formats: Sequence[int] = ()
    ) -> Result:
        result = await self.run(sql, params, result_formats)
        if result.error is not None:
            raise QueryFailed(result)
        return result

    async def _collect(self, result: Result) -> Result:
        while True:
            kind, body = await self.next()
            if kind == Backend.DATA_ROW:
                result.raw_rows.append(body)
                result.rows.append(data_row_values(body))
            elif kind == Backend.ROW_DESCRIPTION:
                result.row_description = body
            elif kind == Backend.COMMAND_COMPLETE:
                result.tag = body[:-1].decode()
            elif kind == ERROR:
                result.error = body
            elif kind == READY:
                result.status = body[0]
                return result
