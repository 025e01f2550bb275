"""Shared fixtures: one real PostgreSQL per test session and real proxy processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from proxy.embedded import LocalPostgres
from tests.support import (
    ProxyProcess,
    Sandbox,
    VendorSandbox,
    free_port,
    pg_bin_for_tests,
    run_proxy,
    start_cluster,
)


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """The upstream PostgreSQL (15 from the machine when present)."""
    server = start_cluster(tmp_path_factory.mktemp("pg") / "data", pg_bin_for_tests())
    yield server
    server.stop("immediate")


@pytest.fixture(scope="session")
def proxy(pg: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    """One proxy worker in front of ``pg``."""
    with run_proxy(tmp_path_factory.mktemp("proxy"), "--upstream", pg.url) as process:
        yield process


@pytest.fixture(scope="session")
def proxy2(pg: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    """Two proxy worker processes sharing one port (SO_REUSEPORT)."""
    with run_proxy(
        tmp_path_factory.mktemp("proxy2"), "--upstream", pg.url, "--workers", "2"
    ) as process:
        yield process


@pytest.fixture
def direct_url(pg: LocalPostgres) -> str:
    return pg.url


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


SYNCED_DB = "synced"
HUBSPOT_TOKEN_ENV = "WRITEPROXY_TEST_HUBSPOT_TOKEN"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The HubSpot sandbox API on a real port."""
    from proxy.demo import sandbox_process

    with sandbox_process(free_port()) as url:
        box = Sandbox(url)
        box.reset()
        yield box


@pytest.fixture(scope="session")
def sf_sandbox() -> Iterator[VendorSandbox]:
    """The Salesforce sandbox API on a real port."""
    from proxy.demo import sandbox_process

    with sandbox_process(free_port(), "salesforce") as url:
        box = VendorSandbox(url, "/services/")
        box.reset()
        yield box


@pytest.fixture(scope="session")
def stripe_sandbox() -> Iterator[VendorSandbox]:
    """The Stripe sandbox API on a real port."""
    from proxy.demo import sandbox_process

    with sandbox_process(free_port(), "stripe") as url:
        box = VendorSandbox(url, "/v1/")
        box.reset()
        yield box


SF_SECRETS = {
    "WRITEPROXY_TEST_SF_CLIENT_ID": "sandbox-client-id",
    "WRITEPROXY_TEST_SF_CLIENT_SECRET": "sandbox-client-secret",
    "WRITEPROXY_TEST_SF_REFRESH_TOKEN": "sandbox-refresh-token",
}
STRIPE_KEY_ENV = "WRITEPROXY_TEST_STRIPE_KEY"


def vendors_config(
    tmp: Path, sf: VendorSandbox, stripe: VendorSandbox, *, salesforce: str = "", top: str = ""
) -> dict[str, str]:
    """A TOML file syncing the ``salesforce`` schema (OAuth refresh) and the ``stripe``
    schema to their sandboxes with fast retry waits; returns the proxy's environment."""
    config = tmp / "writeproxy.toml"
    config.write_text(
        f"""{top}
[connectors.salesforce]
kind = "salesforce"
base_url = "{sf.base_url}"
login_url = "{sf.base_url}"
schema = "salesforce"
client_id_env = "WRITEPROXY_TEST_SF_CLIENT_ID"
client_secret_env = "WRITEPROXY_TEST_SF_CLIENT_SECRET"
refresh_token_env = "WRITEPROXY_TEST_SF_REFRESH_TOKEN"
read_timeout_s = 2
backoff_base_s = 0.01
backoff_cap_s = 0.05
locked_wait_s = 0.05
{salesforce}

[connectors.stripe]
kind = "stripe"
base_url = "{stripe.base_url}"
token_env = "{STRIPE_KEY_ENV}"
schema = "stripe"
read_timeout_s = 2
backoff_base_s = 0.01
backoff_cap_s = 0.05
"""
    )
    return {"WRITEPROXY_CONFIG": str(config), **SF_SECRETS, STRIPE_KEY_ENV: "sk_test_sandbox"}


@pytest.fixture(scope="session")
def vendors_proxy(
    synced_url: str,
    sf_sandbox: VendorSandbox,
    stripe_sandbox: VendorSandbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    """A proxy whose ``salesforce`` and ``stripe`` schemas are synced to the sandboxes."""
    tmp = tmp_path_factory.mktemp("vendors")
    env = vendors_config(tmp, sf_sandbox, stripe_sandbox)
    with run_proxy(tmp, "--upstream", synced_url, env=env) as process:
        yield process


@pytest.fixture(scope="session")
def synced_url(pg: LocalPostgres) -> str:
    """A database with the playbook schema (public.users, hubspot.contact, ...)."""
    import psycopg

    from proxy.demo import schema_sql

    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SYNCED_DB}")
        conn.execute(f"CREATE DATABASE {SYNCED_DB}")
    url = pg.url.rsplit("/", 1)[0] + f"/{SYNCED_DB}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(schema_sql())
        # An auto-updatable view over a synced table: writes through it must be refused.
        conn.execute("CREATE VIEW public.contact_emails AS SELECT id, email FROM hubspot.contact")
    return url


def synced_config(
    tmp: Path, sandbox: Sandbox, connector: str = "read_timeout_s = 2", top: str = ""
) -> dict[str, str]:
    """A TOML file syncing the ``hubspot`` schema to the sandbox with fast retry waits
    (``top``: settings before the tables, ``connector``: more connector keys); returns
    the environment a proxy needs to use it."""
    config = tmp / "writeproxy.toml"
    config.write_text(
        f"""{top}
[connectors.hubspot]
kind = "hubspot"
base_url = "{sandbox.base_url}"
token_env = "{HUBSPOT_TOKEN_ENV}"
schema = "hubspot"
backoff_base_s = 0.01
backoff_cap_s = 0.05
{connector}
"""
    )
    return {"WRITEPROXY_CONFIG": str(config), HUBSPOT_TOKEN_ENV: "sandbox-token"}


@pytest.fixture(scope="session")
def synced_proxy(
    synced_url: str, sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    """A proxy whose ``hubspot`` schema is synced to the sandbox (fast retry waits)."""
    tmp = tmp_path_factory.mktemp("synced")
    env = synced_config(
        tmp, sandbox, "read_timeout_s = 2\nten_secondly_wait_s = 0.05\nlocked_wait_s = 0.05"
    )
    with run_proxy(tmp, "--upstream", synced_url, env=env) as process:
        yield process


@pytest.fixture
def killable(
    synced_url: str, sandbox: Sandbox, tmp_path: Path
) -> Iterator[tuple[ProxyProcess, Callable[[], ProxyProcess]]]:
    """A proxy of this test's own (short journal lease, fast recovery), which the test
    may kill with SIGKILL and start again on the same port."""
    env = synced_config(
        tmp_path,
        sandbox,
        connector="read_timeout_s = 5",
        top="journal_lease_seconds = 2\njournal_recovery_interval = 0.5\n",
    )
    port = free_port()
    stack: list[object] = []

    def start() -> ProxyProcess:
        manager = run_proxy(tmp_path, "--upstream", synced_url, env=env, port=port)
        process = manager.__enter__()
        stack.append(manager)
        return process

    first = start()
    yield first, start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)  # type: ignore[attr-defined]
