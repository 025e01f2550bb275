"""A bare TCP byte forwarder on uvloop: the pass-through benchmark's "forwarder" target.

It exists to measure this design's ceiling. writeproxy relays in one Python
process on uvloop; so does this, minus everything writeproxy does on top: each
accepted client connection opens one upstream TCP connection and two asyncio
Protocols copy the bytes both ways as they arrive. No parsing (no startup or
message framing, no ReadyForQuery scan, no session state), no TLS, no limits.
What it costs over ``direct`` is the price of the hop itself (two more sockets,
a ``recv`` and a ``send`` per direction per round trip, the event loop and
CPython's per-call overhead) -- the fastest a single-process Python/uvloop relay
can be. So ``proxy/forwarder`` is the share of the ceiling writeproxy reaches
(1.0 = its own work costs nothing measurable), and ``forwarder/direct`` is what
any such relay costs before doing anything useful.

    python -m bench.harness.forwarder --listen 127.0.0.1:6433 --upstream 127.0.0.1:5432

Back-pressure: when one side's write buffer fills (``pause_writing``) the other
side stops reading until it drains (``resume_writing``). When either side closes,
both are closed (what is still buffered for the other side is flushed first).
Runs until SIGTERM or SIGINT. For benchmarks only.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import cast

import uvloop


def host_port(text: str) -> tuple[str, int]:
    """An argparse type: ``HOST:PORT``."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    return host, int(port)


class Pipe(asyncio.Protocol):
    """One side of a relayed connection: what it receives is written to ``out``,
    the other side's transport, and that side's back-pressure pauses this one.
    What arrives before ``out`` exists is kept in ``early``, reading paused."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.out: asyncio.Transport | None = None
        self.early: list[bytes] = []
        self.closed = False

    def data_received(self, data: bytes) -> None:
        out = self.out
        if out is not None:
            out.write(data)
        else:
            self.early.append(data)
            if self.transport is not None:
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        return False  # close this side; connection_lost closes the other

    def pause_writing(self) -> None:
        if self.out is not None and not self.out.is_closing():
            self.out.pause_reading()

    def resume_writing(self) -> None:
        if self.out is not None and not self.out.is_closing():
            self.out.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.out is not None:
            self.out.close()


class ClientSide(Pipe):
    """An accepted client; its upstream side is connected by a task started here (so
    the client's transport exists by then). Pausing here would not hold: uvloop
    starts reading after ``connection_made`` returns, hence ``early``."""

    def __init__(self, upstream: tuple[str, int], connecting: set[asyncio.Task[None]]) -> None:
        super().__init__()
        self.upstream = upstream
        self.connecting = connecting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        task = asyncio.get_running_loop().create_task(self.connect())
        self.connecting.add(task)  # a strong reference until it is done
        task.add_done_callback(self.connecting.discard)

    async def connect(self) -> None:
        """Open the upstream side; close the client when that fails."""
        host, port = self.upstream
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: UpstreamSide(self), host, port)
        except OSError as exc:
            print(f"upstream {host}:{port} refused a connection: {exc}", file=sys.stderr)
            if self.transport is not None:
                self.transport.close()


class UpstreamSide(Pipe):
    """The connection to PostgreSQL made for one client; links both sides when made."""

    def __init__(self, client: ClientSide) -> None:
        super().__init__()
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        client = self.client
        if client.closed or client.transport is None:  # the client left meanwhile
            self.transport.close()
            return
        self.out = client.transport
        client.out = self.transport
        if client.early:
            self.transport.write(b"".join(client.early))
            client.early.clear()
            client.transport.resume_reading()


async def serve(listen: tuple[str, int], upstream: tuple[str, int]) -> None:
    """Forward from ``listen`` to ``upstream`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    connecting: set[asyncio.Task[None]] = set()
    server = await loop.create_server(
        lambda: ClientSide(upstream, connecting), *listen, backlog=1024
    )
    print(f"forwarding {listen[0]}:{listen[1]} -> {upstream[0]}:{upstream[1]}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=host_port, required=True, help="HOST:PORT to accept on")
    parser.add_argument("--upstream", type=host_port, required=True, help="HOST:PORT to relay to")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.listen, args.upstream))
    return 0


if __name__ == "__main__":
    sys.exit(main())
