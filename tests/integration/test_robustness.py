"""Robustness of the client listener.

Garbage, truncated, oversized and out-of-order input, before and after
authentication, must end in a clean ErrorResponse or a closed connection: never a
crash, never bytes forwarded that PostgreSQL did not expect (its log would say so),
never an effect on another session. Where it makes sense the same bytes are also sent
to PostgreSQL directly and the SQLSTATEs compared.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.config import Settings
from proxy.embedded import LocalPostgres
from proxy.wire.framing import FRONTEND_READY_TYPES, INT32, MAX_STARTUP_PACKET, message
from proxy.wire.messages.error_response import parse_fields
from proxy.wire.messages.startup import (
    CANCEL_REQUEST_CODE,
    GSSENC_REQUEST_CODE,
    SSL_REQUEST_CODE,
)
from tests.support import MD5_USER, SCRAM_USER, ProxyProcess

IO_TIMEOUT = 5.0
#: application_name of every raw session, so its upstream backend can be counted.
TAG = "robustness-raw"
BYSTANDER = "robustness-bystander"
PROTOCOL_3_0 = 3 << 16
MAX_MESSAGE = int(Settings.model_fields["max_message_bytes"].default)
#: PostgreSQL's PQ_SMALL_MESSAGE_LIMIT, for the message types it applies to.
PG_SMALL_MESSAGE = 10_000
#: Lines PostgreSQL logs when a connection's framing or handshake is broken; the proxy
#: must catch such input itself, so none may follow anything sent through it.
UPSTREAM_COMPLAINTS = (
    "invalid frontend message type",
    "invalid message length",
    "incomplete message from client",
    "incomplete startup packet",
    "invalid length of startup packet",
    "invalid startup packet layout",
    "unsupported frontend protocol",
    "no PostgreSQL user name specified",
    "expected password response",
    "expected SASL response",
    "received unencrypted data",
)
AUTH_MD5, AUTH_SASL = 5, 10

Message = tuple[int, bytes]


# -- a deliberately dumb client -------------------------------------------------------


def raw_startup(code: int, body: bytes = b"") -> bytes:
    """An untyped startup-phase packet: length, 32-bit code, body."""
    return INT32.pack(8 + len(body)) + INT32.pack(code) + body


def startup_packet(
    user: str | None = "postgres", *, version: int = PROTOCOL_3_0, **params: str
) -> bytes:
    """A StartupMessage tagged with TAG (so its backend shows in pg_stat_activity)."""
    fields = {"database": "postgres", "application_name": TAG, **params}
    if user is not None:
        fields["user"] = user
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in fields.items())
    return raw_startup(version, body + b"\0")


def query(sql: str) -> bytes:
    return message(b"Q", sql.encode() + b"\0")


class RawClient:
    """A bare socket that speaks just enough protocol 3 to misbehave on purpose."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_quietly(self, data: bytes) -> None:
        """Send, tolerating that the peer may already have hung up on us."""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def half_close(self) -> None:
        """Stop sending (the peer sees EOF) but keep reading its answer."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        self.eof = not chunk
        self.buf += chunk

    def read_byte(self) -> bytes:
        while not self.buf and not self.eof:
            self._fill()
        assert self.buf, "connection closed instead of answering"
        byte = bytes(self.buf[:1])
        del self.buf[:1]
        return byte

    def read_raw_to_end(self) -> bytes:
        """Everything until the peer closes; a socket timeout means it never did."""
        while not self.eof:
            self._fill()
        data, self.buf = bytes(self.buf), bytearray()
        return data

    def read_message(self) -> Message | None:
        """The next typed message, or None once the peer has closed cleanly."""
        while True:
            if len(self.buf) >= 5:
                length = INT32.unpack_from(self.buf, 1)[0]
                assert length >= 4, f"malformed message from server: {bytes(self.buf[:16])!r}"
                if len(self.buf) >= 1 + length:
                    msg = (self.buf[0], bytes(self.buf[5 : 1 + length]))
                    del self.buf[: 1 + length]
                    return msg
            if self.eof:
                assert not self.buf, f"connection closed mid-message: {bytes(self.buf)!r}"
                return None
            self._fill()

    def read_until(self, kind: bytes) -> list[Message]:
        messages: list[Message] = []
        while True:
            msg = self.read_message()
            assert msg is not None, f"closed before {kind!r}; got {messages!r}"
            messages.append(msg)
            if msg[0] == kind[0]:
                return messages

    def read_to_end(self) -> list[Message]:
        """Every message until the peer closes; a socket timeout means it never did."""
        messages: list[Message] = []
        while (msg := self.read_message()) is not None:
            messages.append(msg)
        return messages


def ready_session(port: int, user: str = "postgres") -> RawClient:
    """A raw session of a trust user that has reached ReadyForQuery."""
    client = RawClient(port)
    client.send(startup_packet(user))
    client.read_until(b"Z")
    return client


def auth_request(client: RawClient, user: str) -> int:
    """Start a session for ``user``; return the authentication code the server asks."""
    client.send(startup_packet(user))
    body = client.read_until(b"R")[-1][1]
    return int(INT32.unpack_from(body, 0)[0])


def errors(messages: list[Message]) -> list[dict[str, str]]:
    return [parse_fields(body) for kind, body in messages if kind == ord("E")]


def assert_fatal(messages: list[Message], sqlstate: str = "08P01") -> dict[str, str]:
    """The server said exactly one thing more, a FATAL ``sqlstate``, then closed."""
    assert [kind for kind, _ in messages] == [ord("E")], messages
    fields = errors(messages)[0]
    assert (fields["severity"], fields["sqlstate"]) == ("FATAL", sqlstate), fields
    return fields


def sqlstate(messages: list[Message]) -> str | None:
    found = errors(messages)
    return found[0]["sqlstate"] if found else None


# -- what must hold after every test --------------------------------------------------


@dataclass
class Watch:
    """Checks that bad input had no effect beyond its own connection."""

    proxy: ProxyProcess
    pg: LocalPostgres
    monitor: psycopg.Connection[tuple[object, ...]]
    bystander: psycopg.Connection[tuple[object, ...]]
    pg_log_offset: int = 0
    proxy_log_offset: int = 0

    def rebase(self) -> None:
        """Forget upstream log lines so far: call after feeding PostgreSQL junk directly."""
        self.pg_log_offset = self.pg.log_file.stat().st_size

    def raw_backends(self) -> int:
        row = self.monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (TAG,)
        ).fetchone()
        assert row is not None and isinstance(row[0], int)
        return row[0]

    def wait_raw_backends_gone(self, timeout: float = 10.0) -> None:
        """Every upstream backend a raw session used has exited (so has logged); the
        two clear polls also give a backend that never got that far time to log."""
        deadline = time.monotonic() + timeout
        clear = 0
        while clear < 2:
            if self.raw_backends():
                clear = 0
                assert time.monotonic() < deadline, "upstream backends were not released"
            else:
                clear += 1
            time.sleep(0.05)

    def upstream_complaints(self) -> list[str]:
        with self.pg.log_file.open("rb") as f:
            f.seek(self.pg_log_offset)
            text = f.read().decode(errors="replace")
        return [line for line in text.splitlines() if any(c in line for c in UPSTREAM_COMPLAINTS)]

    def proxy_failures(self) -> list[str]:
        with self.proxy.log_path.open("rb") as f:
            f.seek(self.proxy_log_offset)
            text = f.read().decode(errors="replace")
        return [
            line
            for line in text.splitlines()
            if "Traceback" in line or " ERROR " in line or " CRITICAL " in line
        ]

    def check(self) -> None:
        assert self.proxy.process.poll() is None, "the proxy process died"
        self.wait_raw_backends_gone()
        assert self.upstream_complaints() == []
        assert self.proxy_failures() == []
        assert self.bystander.execute("SELECT %s::int", (7,)).fetchone() == (7,)
        with psycopg.connect(self.proxy.url(), connect_timeout=5) as fresh:
            assert fresh.execute("SELECT 'still fine'").fetchone() == ("still fine",)


@pytest.fixture(scope="module")
def monitor(pg: LocalPostgres) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(pg.url, autocommit=True, application_name="robustness-monitor") as conn:
        yield conn


@pytest.fixture(scope="module")
def bystander(proxy: ProxyProcess) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A well-behaved session that lives through every test of this module."""
    with psycopg.connect(proxy.url(), autocommit=True, application_name=BYSTANDER) as conn:
        yield conn


@pytest.fixture(autouse=True)
def watch(
    proxy: ProxyProcess,
    pg: LocalPostgres,
    monitor: psycopg.Connection[tuple[object, ...]],
    bystander: psycopg.Connection[tuple[object, ...]],
) -> Iterator[Watch]:
    """Every test here ends with the checks of ``Watch.check``."""
    w = Watch(proxy, pg, monitor, bystander)
    w.rebase()
    w.proxy_log_offset = proxy.log_path.stat().st_size
    yield w
    w.check()


def exchange(port: int, payload: bytes, *, half_close: bool = True) -> list[Message]:
    """Send ``payload`` on a fresh connection (then EOF), read until closed."""
    with RawClient(port) as client:
        client.send(payload)
        if half_close:
            client.half_close()
        return client.read_to_end()


def direct(watch: Watch, payload: bytes) -> list[Message]:
    """What PostgreSQL itself answers to ``payload`` (its complaints are expected)."""
    answer = exchange(watch.pg.port, payload)
    watch.rebase()
    return answer


# -- before the startup packet --------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: db\r\n\r\n", id="http"),
        pytest.param(bytes.fromhex("160301020001000001fc0303") + b"\0" * 40, id="tls-hello"),
        pytest.param(b"\xff" * 64, id="ff"),
        pytest.param(b"\0\0\0\0", id="zero-length"),
        pytest.param(INT32.pack(7) + b"abc", id="length-7"),
        pytest.param(INT32.pack(MAX_STARTUP_PACKET + 1) + b"x" * 100, id="length-10001"),
        pytest.param(INT32.pack(0xFFFFFFFF), id="length-max"),
    ],
)
def test_garbage_before_startup(proxy: ProxyProcess, watch: Watch, payload: bytes) -> None:
    """An impossible startup length ends the connection as PostgreSQL does: it logs
    it and closes without an answer."""
    assert exchange(proxy.port, payload) == []
    assert sqlstate(direct(watch, payload)) is None


def test_terminate_before_startup_closes_silently(proxy: ProxyProcess, watch: Watch) -> None:
    """node-postgres's quick-disconnect: a Terminate instead of a startup packet."""
    assert exchange(proxy.port, message(b"X")) == direct(watch, message(b"X")) == []


@pytest.mark.parametrize("total, accepted", [(10_004, True), (10_005, False)])
def test_startup_packet_size_limit(
    proxy: ProxyProcess, watch: Watch, total: int, accepted: bool
) -> None:
    """PostgreSQL's cap (MAX_STARTUP_PACKET_LENGTH = 10000) does not count the length
    word: a 10004-byte startup packet is served, one byte more is refused."""
    pad = total - len(startup_packet(**{"robustness.pad": ""}))
    payload = startup_packet(**{"robustness.pad": "a" * pad})
    assert len(payload) == total
    for port in (watch.pg.port, proxy.port):
        with RawClient(port) as client:
            client.send(payload)
            if accepted:
                assert errors(client.read_until(b"Z")) == []
                client.send(message(b"X"))
                assert client.read_to_end() == []
            else:
                assert client.read_to_end() == []  # both just hang up
                if port == watch.pg.port:
                    watch.rebase()


def test_truncated_startup_then_close(proxy: ProxyProcess) -> None:
    """Half a startup packet then EOF: nothing to answer, the connection just closes."""
    assert exchange(proxy.port, startup_packet()[:20]) == []


def test_truncated_startup_does_not_block_others(proxy: ProxyProcess, watch: Watch) -> None:
    """A client stalled mid-startup holds nothing but its own socket."""
    with RawClient(proxy.port) as stalled:
        stalled.send(startup_packet()[:20])
        assert watch.bystander.execute("SELECT 1").fetchone() == (1,)
        with ready_session(proxy.port) as other:
            other.send(query("SELECT 2"))
            assert (ord("D"), b"\0\x01\0\0\0\x012") in other.read_until(b"Z")


@pytest.mark.parametrize("major, minor", [(2, 0), (4, 0), (1234, 5)])
def test_unsupported_protocol_version(
    proxy: ProxyProcess, watch: Watch, major: int, minor: int
) -> None:
    """PostgreSQL answers FATAL "unsupported frontend protocol" (0A000)."""
    payload = startup_packet(version=(major << 16) | minor)
    through = assert_fatal(exchange(proxy.port, payload), "0A000")
    assert through["message"].startswith(f"unsupported frontend protocol {major}.{minor}")
    with RawClient(watch.pg.port) as client:
        client.send(payload)
        answer = client.read_raw_to_end()
    watch.rebase()
    # PostgreSQL answers a 2.0 client in the 2.0 format, which has no SQLSTATE.
    assert b"unsupported frontend protocol" in answer
    if major >= 3:
        assert errors([(answer[0], answer[5:])])[0]["sqlstate"] == "0A000"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"database\0postgres\0\0", id="no-user"),
        pytest.param(b"user\0\0\0", id="empty-user"),
        pytest.param(b"\0", id="no-parameters"),
        pytest.param(b"user\0postgres\0", id="no-terminator"),
        pytest.param(b"user\0postgres", id="unterminated-value"),
        pytest.param(b"user\0postgres\0\0application_name\0x\0\0", id="data-after-terminator"),
        pytest.param(b"user\0postgres\0database\0\0", id="name-without-value"),
        pytest.param(b"user\0postgres\0\0\0", id="double-terminator"),
    ],
)
def test_malformed_startup_packet(proxy: ProxyProcess, watch: Watch, body: bytes) -> None:
    """The proxy rejects exactly what PostgreSQL rejects, with the same SQLSTATE, and
    forwards none of it (the watch asserts PostgreSQL logged nothing)."""
    payload = raw_startup(PROTOCOL_3_0, body)
    expected = sqlstate(direct(watch, payload))
    assert expected is not None
    assert_fatal(exchange(proxy.port, payload), expected)


@pytest.mark.parametrize("code", [SSL_REQUEST_CODE, GSSENC_REQUEST_CODE])
def test_encryption_request_refused_then_startup(proxy: ProxyProcess, code: int) -> None:
    """SSLRequest/GSSENCRequest get 'N'; the same connection then starts normally."""
    with RawClient(proxy.port) as client:
        client.send(raw_startup(code))
        assert client.read_byte() == b"N"
        client.send(startup_packet())
        kinds = [kind for kind, _ in client.read_until(b"Z")]
        assert kinds[0] == ord("R") and ord("E") not in kinds
        client.send(query("SELECT 40 + 2"))
        assert (ord("D"), b"\0\x01\0\0\0\x0242") in client.read_until(b"Z")
        client.send(message(b"X"))
        assert client.read_to_end() == []


def test_both_encryption_requests_refused(proxy: ProxyProcess) -> None:
    """libpq may try GSSAPI encryption, then SSL, then plaintext on one connection."""
    with RawClient(proxy.port) as client:
        client.send(raw_startup(GSSENC_REQUEST_CODE))
        assert client.read_byte() == b"N"
        client.send(raw_startup(SSL_REQUEST_CODE))
        assert client.read_byte() == b"N"
        client.send(startup_packet())
        client.read_until(b"Z")


@pytest.mark.parametrize("code", [SSL_REQUEST_CODE, GSSENC_REQUEST_CODE])
def test_encryption_request_with_pipelined_data(
    proxy: ProxyProcess, watch: Watch, code: int
) -> None:
    """Plaintext sent before the answer to an encryption request could have been
    injected by a man in the middle (CVE-2021-23214): FATAL 08P01, as PostgreSQL."""
    payload = raw_startup(code) + startup_packet()

    def answer(port: int) -> list[Message]:
        with RawClient(port) as client:
            client.send(payload)
            data = client.read_raw_to_end()
        # PostgreSQL sends its one-byte 'N' before complaining; the proxy need not.
        if data[:2] == b"NE":
            data = data[1:]
        client.buf, client.eof = bytearray(data), True
        return client.read_to_end()

    assert_fatal(answer(proxy.port), "08P01")
    if code == SSL_REQUEST_CODE:
        # (A PostgreSQL built with GSSAPI answers a GSSENCRequest 'G': not comparable.)
        expected = answer(watch.pg.port)
        watch.rebase()
        assert sqlstate(expected) == "08P01"


def test_cancel_request_with_bogus_key_closes(proxy: ProxyProcess) -> None:
    """A CancelRequest is answered by closing the connection, whatever its key."""
    packet = raw_startup(CANCEL_REQUEST_CODE, INT32.pack(0x01000001) + b"nope")
    assert exchange(proxy.port, packet) == []
    garbage_key = raw_startup(CANCEL_REQUEST_CODE, b"\xff" * 8)
    assert exchange(proxy.port, garbage_key) == []


def test_bogus_cancel_requests_across_workers(proxy2: ProxyProcess) -> None:
    """With two workers a cancel is forwarded to the worker its pid names; keys naming
    either worker, a worker that does not exist, or none, all just get a close."""
    offset = proxy2.log_path.stat().st_size
    for pid in (0x01000001, 0x02000001, 0x03000001, 0x7F000001, 0xFFFFFFFF, 0):
        assert exchange(proxy2.port, raw_startup(CANCEL_REQUEST_CODE, INT32.pack(pid) * 2)) == []
    time.sleep(0.2)  # let forwarded cancels arrive
    assert proxy2.process.poll() is None
    with psycopg.connect(proxy2.url(), connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with proxy2.log_path.open("rb") as f:
        f.seek(offset)
        assert b"Traceback" not in f.read()


def test_short_cancel_request_closes(proxy: ProxyProcess) -> None:
    """A CancelRequest too short to hold a key: closed, with at most an error."""
    answer = exchange(proxy.port, raw_startup(CANCEL_REQUEST_CODE, INT32.pack(1)))
    assert all(kind == ord("E") for kind, _ in answer)


def _cancel_running_query(proxy: ProxyProcess, right_secret: bool) -> list[Message]:
    """Run pg_sleep in a raw session and send a cancel for it meanwhile."""
    with RawClient(proxy.port) as client:
        client.send(startup_packet())
        key = next(body for kind, body in client.read_until(b"Z") if kind == ord("K"))
        pid, secret = key[:4], key[4:]
        if not right_secret:
            secret = bytes(b ^ 0x5A for b in secret)
        # Long enough for the cancel to land; a right one cuts it short.
        client.send(query(f"SELECT pg_sleep({10 if right_secret else 1})"))
        time.sleep(0.1)
        assert exchange(proxy.port, raw_startup(CANCEL_REQUEST_CODE, pid + secret)) == []
        return client.read_until(b"Z")


def test_cancel_request_with_wrong_secret_has_no_effect(proxy: ProxyProcess) -> None:
    """A key with a live session's pid but the wrong secret cancels nothing (and the
    right one does, so this test can tell the difference)."""
    assert errors(_cancel_running_query(proxy, right_secret=False)) == []
    cancelled = errors(_cancel_running_query(proxy, right_secret=True))
    assert [e["sqlstate"] for e in cancelled] == ["57014"]


# -- during authentication ------------------------------------------------------------


@pytest.mark.parametrize("user, code", [(MD5_USER, AUTH_MD5), (SCRAM_USER, AUTH_SASL)])
@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(query("SELECT 1"), id="query"),
        pytest.param(message(b"X"), id="terminate"),
        pytest.param(b"p" + INT32.pack(3), id="length-3"),
        pytest.param(b"\xff" * 32, id="garbage"),
    ],
)
def test_wrong_reply_to_password_request(
    proxy: ProxyProcess, watch: Watch, user: str, code: int, reply: bytes
) -> None:
    """Anything but a well-framed 'p' is refused with FATAL 08P01, as PostgreSQL does
    when it is the wrong type; PostgreSQL never sees it."""
    with RawClient(proxy.port) as client:
        assert auth_request(client, user) == code
        client.send(reply)
        assert_fatal(client.read_to_end(), "08P01")
    if reply[:1] in (b"Q", b"X"):
        with RawClient(watch.pg.port) as client:
            assert auth_request(client, user) == code
            client.send(reply)
            assert sqlstate(client.read_to_end()) == "08P01"
        watch.rebase()


@pytest.mark.parametrize("user", [MD5_USER, SCRAM_USER])
@pytest.mark.parametrize("length", [10_001, 70_000, 0x7FFFFFFF])
def test_oversized_password_message(proxy: ProxyProcess, user: str, length: int) -> None:
    """A 'p' longer than any password or SASL message is refused from its header alone."""
    with RawClient(proxy.port) as client:
        auth_request(client, user)
        client.send(b"p" + INT32.pack(length))
        assert_fatal(client.read_to_end(), "08P01")


@pytest.mark.parametrize("user", [MD5_USER, SCRAM_USER])
def test_client_gives_up_at_password_prompt(proxy: ProxyProcess, user: str) -> None:
    """What psql does when it learns a password is needed: just disconnect. PostgreSQL
    expects nothing more (not even Terminate) and logs nothing."""
    with RawClient(proxy.port) as client:
        auth_request(client, user)
        client.half_close()
        assert client.read_to_end() == []


@pytest.mark.parametrize("user", [MD5_USER, SCRAM_USER])
def test_truncated_password_message_then_close(proxy: ProxyProcess, user: str) -> None:
    with RawClient(proxy.port) as client:
        auth_request(client, user)
        client.send(b"p" + INT32.pack(40) + b"half")
        client.half_close()
        answer = client.read_to_end()
        assert all(kind == ord("E") for kind, _ in answer)


def test_password_sent_before_asked_to_trust_user(proxy: ProxyProcess, watch: Watch) -> None:
    """A 'p' pipelined behind the startup packet of a user who needs no password is,
    for PostgreSQL, a 'p' after authentication: FATAL 08P01 - from the proxy, without
    PostgreSQL ever seeing it."""
    payload = startup_packet() + message(b"p", b"secret\0")
    expected = direct(watch, payload)
    through = exchange(proxy.port, payload, half_close=False)
    assert (sqlstate(expected), sqlstate(through)) == ("08P01", "08P01")
    assert [k for k, _ in through if k in b"RZE"] == [k for k, _ in expected if k in b"RZE"]


def test_query_pipelined_behind_startup(proxy: ProxyProcess) -> None:
    """PostgreSQL serves a query pipelined behind a trust user's startup; so must we."""
    payload = startup_packet() + query("SELECT 'pipelined'") + message(b"X")
    answer = exchange(proxy.port, payload, half_close=False)
    assert errors(answer) == []
    assert (ord("D"), b"\0\x01\0\0\0\x09pipelined") in answer


# -- after authentication -------------------------------------------------------------


@pytest.mark.parametrize("kind", [0, 1, ord("p"), ord("A"), ord("Z"), ord("R"), 0xFF])
def test_unknown_message_type(proxy: ProxyProcess, watch: Watch, kind: int) -> None:
    """FATAL 08P01 "invalid frontend message type", exactly as PostgreSQL."""
    bad = bytes((kind,)) + INT32.pack(4)
    with ready_session(watch.pg.port) as client:
        client.send(bad)
        expected = client.read_to_end()
    watch.rebase()
    with ready_session(proxy.port) as client:
        client.send(bad)
        fields = assert_fatal(client.read_to_end(), str(sqlstate(expected)))
    assert fields["message"] == errors(expected)[0]["message"]


@pytest.mark.parametrize("length", [0, 3])
@pytest.mark.parametrize("kind", [b"Q", b"S", b"X"])
def test_message_length_below_four(proxy: ProxyProcess, kind: bytes, length: int) -> None:
    """PostgreSQL would drop the connection ("invalid message length"); so does the
    proxy, first saying why."""
    with ready_session(proxy.port) as client:
        client.send(kind + INT32.pack(length) + b"\0" * 8)
        assert_fatal(client.read_to_end(), "08P01")


@pytest.mark.parametrize("kind", [b"Q", b"P", b"B", b"d", b"F"])
def test_message_above_max_message_bytes(proxy: ProxyProcess, kind: bytes) -> None:
    """The documented limit: a header announcing more is refused before its body."""
    with ready_session(proxy.port) as client:
        client.send(kind + INT32.pack(MAX_MESSAGE + 1))
        fields = assert_fatal(client.read_to_end(), "08P01")
    assert "length" in fields["message"]


def test_message_at_max_message_bytes_is_buffered(proxy: ProxyProcess) -> None:
    """The limit is inclusive: a header announcing exactly the limit is waited for
    (the session stays open) rather than refused."""
    with ready_session(proxy.port) as client:
        client.send(b"Q" + INT32.pack(MAX_MESSAGE) + b"SELECT")
        client.sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            client.read_message()


@pytest.mark.parametrize("kind", [b"S", b"H", b"C", b"D", b"E", b"c", b"f", b"X"])
def test_message_above_postgres_small_limit(proxy: ProxyProcess, kind: bytes) -> None:
    """PostgreSQL caps these types at 10000 bytes and drops the connection (logging
    "invalid message length"); the proxy must refuse them instead of forwarding."""
    length = PG_SMALL_MESSAGE + 1
    with ready_session(proxy.port) as client:
        client.send_quietly(kind + INT32.pack(length) + b"\0" * (length - 4))
        assert_fatal(client.read_to_end(), "08P01")


def test_password_message_after_authentication(proxy: ProxyProcess, watch: Watch) -> None:
    """'p' is only valid while the server asks for a password: FATAL 08P01 as PostgreSQL."""
    bad = message(b"p", b"late-password\0")
    with ready_session(watch.pg.port) as client:
        client.send(bad)
        expected = client.read_to_end()
    watch.rebase()
    with ready_session(proxy.port) as client:
        client.send(bad)
        assert_fatal(client.read_to_end(), str(sqlstate(expected)))


@pytest.mark.parametrize("in_transaction", [False, True])
def test_truncated_message_then_close(
    proxy: ProxyProcess, watch: Watch, in_transaction: bool
) -> None:
    """Half a message then EOF: the upstream backend is released (the watch waits for
    it to leave pg_stat_activity) and PostgreSQL never sees the half message."""
    with ready_session(proxy.port) as client:
        if in_transaction:
            client.send(query("BEGIN"))
            client.read_until(b"Z")
        assert watch.raw_backends() == 1
        client.send(b"Q" + INT32.pack(100) + b"SELECT")
        client.half_close()
        assert client.read_to_end() == []


def test_truncated_message_behind_running_query(proxy: ProxyProcess, watch: Watch) -> None:
    """EOF while a query runs: the backend is freed at once, not when the query ends."""
    with ready_session(proxy.port) as client:
        client.send(query("SELECT pg_sleep(30)") + b"Q" + INT32.pack(100) + b"SEL")
        time.sleep(0.1)
        started = time.monotonic()
        client.half_close()
        client.read_raw_to_end()
    watch.wait_raw_backends_gone(timeout=5)
    assert time.monotonic() - started < 5


def test_bad_message_behind_good_ones(proxy: ProxyProcess, watch: Watch) -> None:
    """As in PostgreSQL, messages before the bad one run and nothing after it does."""
    watch.monitor.execute("CREATE TABLE IF NOT EXISTS robustness_effects (note text)")
    watch.monitor.execute("TRUNCATE robustness_effects")
    insert = "INSERT INTO robustness_effects VALUES ('{}')".format
    with ready_session(proxy.port) as client:
        client.send(query(insert("first")) + b"\x01" + INT32.pack(4) + query(insert("never")))
        answer = client.read_to_end()
    assert answer[-1][0] == ord("E") and errors(answer)[-1]["sqlstate"] == "08P01"
    watch.wait_raw_backends_gone()
    notes = watch.monitor.execute("SELECT note FROM robustness_effects").fetchall()
    assert notes == [("first",)]


# -- property: random streams never hurt anyone else ----------------------------------


@dataclass(frozen=True)
class Attack:
    """One hostile connection: who it starts as (if anyone) and what it sends then."""

    user: str | None
    wait_for: bytes | None
    chunks: tuple[bytes, ...]


def _frame(kind: int, body: bytes, delta: int) -> bytes:
    if kind == ord("F"):
        body = b"\0\0\0\0" + body  # function OID 0: random calls must not run anything
    return bytes((kind,)) + INT32.pack((len(body) + 4 + delta) & 0xFFFFFFFF) + body


frames = st.builds(
    _frame,
    kind=st.sampled_from(sorted(FRONTEND_READY_TYPES | set(b"pRZ\0\xff"))) | st.integers(0, 255),
    body=st.binary(max_size=48),
    delta=st.just(0)
    | st.integers(-8, 8)
    | st.sampled_from([-4, -5, PG_SMALL_MESSAGE, MAX_MESSAGE, 0x7FFFFFFF, 0xFFFFFFF0]),
)
startup_like = st.builds(
    lambda code, body, delta: (
        INT32.pack((len(body) + 8 + delta) & 0xFFFFFFFF) + INT32.pack(code) + body
    ),
    code=st.sampled_from(
        [SSL_REQUEST_CODE, GSSENC_REQUEST_CODE, CANCEL_REQUEST_CODE, PROTOCOL_3_0, 2 << 16]
    )
    | st.integers(0, 0xFFFFFFFF),
    body=st.binary(max_size=64),
    delta=st.just(0) | st.integers(-8, 8),
)


def _chunks(parts: st.SearchStrategy[bytes]) -> st.SearchStrategy[tuple[bytes, ...]]:
    return st.lists(parts, max_size=6).map(tuple)


attacks = st.one_of(
    st.builds(Attack, st.none(), st.none(), _chunks(st.binary(max_size=200) | startup_like)),
    st.builds(Attack, st.just("postgres"), st.none(), _chunks(st.binary(max_size=100) | frames)),
    st.builds(
        Attack, st.just("postgres"), st.just(b"Z"), _chunks(st.binary(max_size=100) | frames)
    ),
    st.builds(
        Attack,
        st.sampled_from([MD5_USER, SCRAM_USER]),
        st.just(b"R"),
        _chunks(st.binary(max_size=100) | frames),
    ),
)


class WellBehavedClient(threading.Thread):
    """Keeps running queries through the proxy (reconnecting now and then)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.queries = 0

    def run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set():
                with psycopg.connect(self.url, application_name=BYSTANDER) as conn:
                    for _ in range(25):
                        n += 1
                        row = conn.execute("SELECT %s::int, repeat('x', %s)", (n, n % 50))
                        if row.fetchone() != (n, "x" * (n % 50)):
                            self.failures.append(f"wrong result for {n}")
                        self.queries += 1
                    conn.commit()
        except Exception as exc:
            self.failures.append(repr(exc))


def run_attack(port: int, attack: Attack) -> None:
    """Throw ``attack`` at the listener; whatever happens, it must end in a close."""
    with RawClient(port) as client:
        if attack.user is not None:
            client.send(startup_packet(attack.user))
            if attack.wait_for is not None:
                client.read_until(attack.wait_for)
        for chunk in attack.chunks:
            client.send_quietly(chunk)
        client.half_close()
        if attack.user is None:
            client.read_raw_to_end()  # may hold the one-byte answer to an SSLRequest
        else:
            client.read_to_end()


def test_random_streams_never_disturb_a_well_behaved_client(
    proxy: ProxyProcess, watch: Watch
) -> None:
    """Fuzz the listener in every state while another client keeps working."""
    worker = WellBehavedClient(proxy.url())
    worker.start()

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(attacks)
    def attack_listener(attack: Attack) -> None:
        examples.append(attack)
        run_attack(proxy.port, attack)
        assert proxy.process.poll() is None
        # Cheap per-example checks (a late log line may blame the next example; the
        # watch repeats them once every backend is gone).
        assert watch.upstream_complaints() == []
        assert watch.proxy_failures() == []

    examples: list[Attack] = []
    try:
        attack_listener()
    finally:
        worker.stop.set()
        worker.join(30)
    assert len(examples) >= 100
    # Hypothesis's draw depends a little on what ran before it in the process (the
    # count was 18-26 across whole-suite orders); 15 still means every state is attacked.
    assert sum(a.wait_for == b"Z" for a in examples) >= 15, "too few attacks on READY"
    assert worker.failures == []
    assert worker.queries > 0
