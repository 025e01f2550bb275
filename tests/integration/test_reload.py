"""SIGHUP reads the catalog again without dropping sessions: a synced table created
after startup is synced from the next statement on, in every worker; a failed reload
keeps the previous catalog; the proxy (supervisor and workers) never dies of it."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import synced_config
from tests.support import ProxyProcess, Sandbox, free_port, run_proxy
from tests.synced import Harness, harness

COMPANY = """
CREATE TABLE hubspot.company (
    id text PRIMARY KEY,
    name text,
    domain text,
    createdate timestamptz,
    _sync_inserted_at timestamptz NOT NULL DEFAULT now(),
    _sync_updated_at timestamptz NOT NULL DEFAULT now()
)"""


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


@pytest.fixture
def company_table(synced_url: str) -> Iterator[None]:
    with psycopg.connect(synced_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS hubspot.company")
    yield
    with psycopg.connect(synced_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS hubspot.company")


def wait_for_log(proxy: ProxyProcess, text: str, count: int = 1, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while proxy.log().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{proxy.log()[-2000:]}"
        time.sleep(0.1)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sighup_syncs_a_table_created_after_startup(
    hs: Harness, company_table: None, tmp_path: Path, workers: str
) -> None:
    env = synced_config(tmp_path, hs.sandbox)
    with run_proxy(tmp_path, "--upstream", hs.direct_url, "--workers", workers, env=env) as proxy:
        url = proxy.url(db="synced")
        wait_for_log(proxy, "ready", int(workers))
        with psycopg.connect(url, autocommit=True) as kept:  # a session that stays open
            with psycopg.connect(hs.direct_url, autocommit=True) as admin:
                admin.execute(COMPANY)
            # Unknown to the proxy yet: an ordinary table (PostgreSQL wants an id).
            with pytest.raises(psycopg.errors.NotNullViolation):
                kept.execute("INSERT INTO hubspot.company (name) VALUES ('Early')")
            proxy.process.send_signal(signal.SIGHUP)
            wait_for_log(proxy, "catalog read again: 4 synced tables", int(workers))
            # The same session, its next statement: synced now.
            [(ident, name)] = kept.execute(
                "INSERT INTO hubspot.company (name, domain) VALUES ('Acme', 'acme.test') "
                "RETURNING id, name"
            ).fetchall()
            assert name == "Acme" and ident
            with psycopg.connect(url, autocommit=True) as fresh:
                fresh.execute("UPDATE hubspot.company SET domain = 'acme.example'")
        companies = hs.sandbox.objects("companies")
        assert [(c["id"], c["properties"]["domain"]) for c in companies] == [
            (ident, "acme.example")
        ]
        assert proxy.process.poll() is None  # alive: SIGHUP never stops the proxy
        assert "worker" not in proxy.log() or "exited" not in proxy.log()
        # A direct write to the new table is now refused by the guard.
        with (
            psycopg.connect(hs.direct_url, autocommit=True) as direct,
            pytest.raises(psycopg.errors.FeatureNotSupported),
        ):
            direct.execute("UPDATE hubspot.company SET name = 'sneaky'")
        hs.local("DELETE FROM hubspot.company RETURNING id")
        hs.sandbox.reset()


def test_a_failed_reload_keeps_the_catalog(hs: Harness, tmp_path: Path) -> None:
    config = tmp_path / "writeproxy.toml"
    env = synced_config(tmp_path, hs.sandbox)
    with run_proxy(tmp_path, "--upstream", hs.direct_url, env=env) as proxy:
        wait_for_log(proxy, "ready")
        # A table the HubSpot mapping refuses (an association table without its ends).
        with psycopg.connect(hs.direct_url, autocommit=True) as admin:
            admin.execute("CREATE TABLE hubspot.associations_x_y (a text)")
        try:
            proxy.process.send_signal(signal.SIGHUP)
            wait_for_log(proxy, "the previous one stays")
            with psycopg.connect(proxy.url(db="synced"), autocommit=True) as conn:
                [(ident,)] = conn.execute(
                    "INSERT INTO hubspot.contact (email) VALUES ('still@example.com') RETURNING id"
                ).fetchall()
            assert ident
        finally:
            with psycopg.connect(hs.direct_url, autocommit=True) as admin:
                admin.execute("DROP TABLE hubspot.associations_x_y")
    assert config.exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ddl_through_the_proxy_reads_the_catalog_again(
    hs: Harness, company_table: None, tmp_path: Path, workers: str
) -> None:
    """A synced table created through the proxy is synced once its transaction ends,
    in every worker — no SIGHUP needed (its writes would otherwise stay local)."""
    env = synced_config(tmp_path, hs.sandbox)
    with run_proxy(tmp_path, "--upstream", hs.direct_url, "--workers", workers, env=env) as proxy:
        wait_for_log(proxy, "ready", int(workers))
        url = proxy.url(db="synced")
        with psycopg.connect(url) as conn:
            conn.execute(COMPANY)
            conn.execute("COMMENT ON TABLE hubspot.company IS 'synced from HubSpot'")
            conn.commit()
        wait_for_log(proxy, "catalog read again: 4 synced tables", int(workers))
        with psycopg.connect(url, autocommit=True) as conn:
            [(ident,)] = conn.execute(
                "INSERT INTO hubspot.company (name) VALUES ('Made') RETURNING id"
            ).fetchall()
        assert [c["id"] for c in hs.sandbox.objects("companies")] == [ident]
        hs.local("DELETE FROM hubspot.company RETURNING id")
        hs.sandbox.reset()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sighup_applies_a_changed_configuration_file(
    hs: Harness, tmp_path: Path, workers: str
) -> None:
    """Connector settings, limits and the log level take effect on SIGHUP for the
    sessions already open; what needs a restart is named in the log; an invalid file
    changes nothing."""
    env = synced_config(tmp_path, hs.sandbox)
    config = Path(env["WRITEPROXY_CONFIG"])
    original = config.read_text()

    def reload(expected: str) -> None:
        before = proxy.log().count(expected)
        proxy.process.send_signal(signal.SIGHUP)
        wait_for_log(proxy, expected, before + int(workers))

    with run_proxy(tmp_path, "--upstream", hs.direct_url, "--workers", workers, env=env) as proxy:
        wait_for_log(proxy, "ready", int(workers))
        with psycopg.connect(proxy.url(db="synced"), autocommit=True) as kept:
            # A new log level, and a journal setting (bound at startup; a --listen flag
            # would likewise win over the file, as at startup).
            config.write_text('log_level = "DEBUG"\njournal_lease_seconds = 7\n' + original)
            reload("changed: log_level")
            assert "journal_lease_seconds changed; restart writeproxy to apply" in proxy.log()
            kept.execute("INSERT INTO hubspot.contact (email) VALUES ('debug@example.com')")
            assert " DEBUG proxy.connectors.http: HubSpot POST contacts: 201" in proxy.log()
            # HubSpot moved (here: to nowhere), one attempt only.
            dead = f"http://127.0.0.1:{free_port()}"
            moved = original.replace(hs.sandbox.base_url, dead).replace(
                'kind = "hubspot"', 'kind = "hubspot"\nmax_attempts = 1'
            )
            config.write_text(moved)
            reload("changed: connectors, log_level")
            with pytest.raises(psycopg.errors.CannotConnectNow) as refused:
                kept.execute("INSERT INTO hubspot.contact (email) VALUES ('moved@example.com')")
            assert "unreachable" in str(refused.value)
            # An invalid file changes nothing.
            config.write_text("this is not [toml")
            reload("the running one stays")
            config.write_text(original)
            reload("changed: connectors")
            kept.execute("INSERT INTO hubspot.contact (email) VALUES ('back@example.com')")
        local = hs.local("SELECT id, email FROM hubspot.contact ORDER BY email")
        assert proxy.process.poll() is None
        started = time.monotonic()
        proxy.stop()  # nothing of the replaced connectors holds the shutdown up
        assert time.monotonic() - started < 5
        assert [email for _, email in local] == ["back@example.com", "debug@example.com"]
    assert sorted(str(o["id"]) for o in hs.sandbox.objects()) == sorted(i for i, _ in local)
