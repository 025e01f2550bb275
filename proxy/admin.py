"""The admin endpoint (``admin_listen``, off by default): ``/metrics`` (Prometheus text
format, every worker merged), ``/healthz`` (the process serves) and ``/readyz`` (the
catalog is loaded and the upstream PostgreSQL accepts connections) — for load balancers
and Kubernetes probes. A deliberately tiny HTTP/1.0 responder on the worker's own event
loop: three GET routes need no web framework, and it never touches signal handling."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from proxy import metrics
from proxy.backend.address import UpstreamAddress

log = logging.getLogger(__name__)
MAX_REQUEST = 8192


async def upstream_reachable(upstream: UpstreamAddress, timeout: float = 2.0) -> bool:
    try:
        if upstream.is_unix_socket:
            coro = asyncio.open_unix_connection(upstream.unix_socket_path)
        else:
            coro = asyncio.open_connection(upstream.host, upstream.port)
        _, writer = await asyncio.wait_for(coro, timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


class AdminServer:
    def __init__(self, upstream: UpstreamAddress, ready: Callable[[], bool]) -> None:
        self._upstream = upstream
        self._ready = ready
        self._server: asyncio.AbstractServer | None = None

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._handle, sock=sock)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            words = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            method, path = [*words, "", ""][:2]
            status, content_type, body = await self._answer(method, path.split("?")[0])
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a probe that went away, or garbage: nothing to answer
        finally:
            writer.close()

    async def _answer(self, method: str, path: str) -> tuple[str, str, bytes]:
        text = "text/plain; charset=utf-8"
        if method != "GET":
            return "405 Method Not Allowed", text, b"GET only\n"
        if path == "/healthz":
            return "200 OK", text, b"ok\n"
        if path == "/readyz":
            if not self._ready():
                return "503 Service Unavailable", text, b"catalog not loaded\n"
            if not await upstream_reachable(self._upstream):
                return "503 Service Unavailable", text, b"upstream PostgreSQL unreachable\n"
            return "200 OK", text, b"ready\n"
        if path == "/metrics":
            body = await asyncio.get_running_loop().run_in_executor(None, metrics.exposition)
            return "200 OK", "text/plain; version=0.0.4; charset=utf-8", body
        return "404 Not Found", text, b"not found: /metrics, /healthz, /readyz\n"
