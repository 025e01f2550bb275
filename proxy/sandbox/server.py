"""Serving the sandbox: an ASGI app, an async `serve`, and a background server for tests."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from .hubspot import SandboxConfig, build_app


def create_app(config: SandboxConfig | None = None) -> Starlette:
    return build_app(config or SandboxConfig())


def _server(app: ASGIApp, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )


async def serve(
    host: str = "127.0.0.1", port: int = 8085, config: SandboxConfig | None = None
) -> None:
    """Serve inside the caller's event loop (e.g. next to the proxy in the demo)."""
    await _server(create_app(config), host, port).serve()


def run(host: str = "127.0.0.1", port: int = 8085, config: SandboxConfig | None = None) -> None:
    """Serve in a new event loop; uvicorn picks uvloop, markedly faster here than asyncio's."""
    _server(create_app(config), host, port).run()


class BackgroundSandbox:
    """Runs a sandbox on a free loopback port in a daemon thread: HubSpot's (built
    from `config`) unless another vendor's ASGI `app` is given.

    `with BackgroundSandbox() as sb: httpx.get(sb.url + "/_sandbox/requests")`
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        host: str = "127.0.0.1",
        *,
        app: ASGIApp | None = None,
        name: str = "sandbox",
    ) -> None:
        self.config = config or SandboxConfig()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        port = self._socket.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self._server = _server(app or create_app(self.config), host, port)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=name,
            daemon=True,
        )

    def start(self, timeout: float = 10.0) -> BackgroundSandbox:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> BackgroundSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
