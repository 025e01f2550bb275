"""TLS both ways, with certificates the test makes (trustme): clients upgrade to TLS
with the proxy (psql, psycopg, asyncpg, node-postgres, pgjdbc; verify-full included),
``tls_mode = require`` refuses plaintext, client certificates can be required, SCRAM users
log in over TLS; and the proxy reaches a TLS-only PostgreSQL as the URL's sslmode says."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psycopg
import pytest
import trustme

from proxy.embedded import LocalPostgres
from tests.compat.test_compat_jdbc import probe as probe
from tests.compat.test_compat_jdbc import run as run_jdbc
from tests.compat.test_compat_node import run_node
from tests.support import (
    REPO,
    SCRAM_PASSWORD,
    SCRAM_USER,
    ProxyProcess,
    free_port,
    pg_bin_for_tests,
    run_proxy,
)


@dataclass
class Certs:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    root = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("postgres")
    ca.cert_pem.write_to_path(root / "ca.pem")
    server.cert_chain_pems[0].write_to_path(root / "server.pem")
    for blob in server.cert_chain_pems[1:]:
        blob.write_to_path(root / "server.pem", append=True)
    server.private_key_pem.write_to_path(root / "server.key")
    client.cert_chain_pems[0].write_to_path(root / "client.pem")
    client.private_key_pem.write_to_path(root / "client.key")
    trustme.CA().cert_pem.write_to_path(root / "other-ca.pem")
    for path in root.iterdir():
        path.chmod(0o600)
    return Certs(
        root / "ca.pem",
        root / "server.pem",
        root / "server.key",
        root / "client.pem",
        root / "client.key",
        root / "other-ca.pem",
    )


def tls_env(certs: Certs, **more: str) -> dict[str, str]:
    return {
        "WRITEPROXY_TLS_CERT_FILE": str(certs.cert),
        "WRITEPROXY_TLS_KEY_FILE": str(certs.key),
        **more,
    }


@pytest.fixture(scope="module")
def tls_proxy(
    pg: LocalPostgres, certs: Certs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    with run_proxy(
        tmp_path_factory.mktemp("tls"), "--upstream", pg.url, env=tls_env(certs)
    ) as process:
        yield process


@pytest.fixture(scope="module")
def tls_only_proxy(
    pg: LocalPostgres, certs: Certs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    env = tls_env(certs, WRITEPROXY_TLS_MODE="require")
    with run_proxy(tmp_path_factory.mktemp("tls-only"), "--upstream", pg.url, env=env) as process:
        yield process


def url(proxy: ProxyProcess, certs: Certs, mode: str, user: str = "postgres", **more: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"sslmode": mode, **more}.items())
    auth = f"{user}:{SCRAM_PASSWORD}" if user == SCRAM_USER else user
    return f"postgresql://{auth}@localhost:{proxy.port}/postgres?{query}"


def ssl_in_use(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        return bool(conn.pgconn.ssl_in_use)


# -- clients -> proxy ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
def test_psycopg_upgrades_and_verifies_the_proxy(
    tls_proxy: ProxyProcess, certs: Certs, mode: str
) -> None:
    assert ssl_in_use(url(tls_proxy, certs, mode, sslrootcert=str(certs.ca)))


def test_a_proxy_certificate_from_another_ca_is_refused(
    tls_proxy: ProxyProcess, certs: Certs
) -> None:
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(url(tls_proxy, certs, "verify-full", sslrootcert=str(certs.other_ca)))


def test_plaintext_is_still_allowed_unless_required(
    tls_proxy: ProxyProcess, tls_only_proxy: ProxyProcess, certs: Certs
) -> None:
    assert not ssl_in_use(url(tls_proxy, certs, "disable"))
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(url(tls_only_proxy, certs, "disable"))
    assert "accepts only TLS connections" in str(refused.value)
    # prefer (libpq's default) upgrades, so the same client works against both.
    assert ssl_in_use(url(tls_only_proxy, certs, "prefer"))


def test_scram_users_log_in_over_tls(tls_proxy: ProxyProcess, certs: Certs) -> None:
    dsn = url(tls_proxy, certs, "verify-full", SCRAM_USER, sslrootcert=str(certs.ca))
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (SCRAM_USER,)
        assert conn.pgconn.ssl_in_use
    # Channel binding would bind to the proxy's TLS session, never the server's: the
    # proxy does not offer it, so a client that insists is told so (not a wrong password).
    with pytest.raises(psycopg.OperationalError, match="channel binding"):
        psycopg.connect(dsn + "&channel_binding=require")


async def test_asyncpg_over_tls(tls_proxy: ProxyProcess, certs: Certs) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca))
    conn = await asyncpg.connect(
        f"postgresql://{SCRAM_USER}:{SCRAM_PASSWORD}@localhost:{tls_proxy.port}/postgres",
        ssl=context,
    )
    try:
        assert await conn.fetchval("SELECT current_user") == SCRAM_USER
    finally:
        await conn.close()


def test_psql_verify_full(tls_proxy: ProxyProcess, certs: Certs) -> None:
    psql = shutil.which("psql") or str(pg_bin_for_tests() / "psql")
    done = subprocess.run(
        [
            psql,
            url(tls_proxy, certs, "verify-full", sslrootcert=str(certs.ca)),
            "-Atc",
            "SELECT 'tls ok'",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tls ok"


def test_node_postgres_verify_full(tls_proxy: ProxyProcess, certs: Certs) -> None:
    out = run_node(
        "pg.mjs", "pool", url=url(tls_proxy, certs, "verify-full", sslrootcert=str(certs.ca))
    )
    assert out["prepared"] == ["0", "2", "4", "6", "8"]


def test_pgjdbc_verify_full(tls_proxy: ProxyProcess, certs: Certs, probe: Path) -> None:
    steps = run_jdbc(
        probe,
        "reads",
        f"postgresql://postgres@localhost:{tls_proxy.port}/postgres",
        sslmode="verify-full",
        sslrootcert=str(certs.ca),
    )
    assert steps  # the probe connected over TLS and ran its scenario


def test_client_certificates_can_be_required(
    pg: LocalPostgres, certs: Certs, tmp_path: Path
) -> None:
    env = tls_env(certs, WRITEPROXY_TLS_CLIENT_CA_FILE=str(certs.ca))
    with run_proxy(tmp_path, "--upstream", pg.url, env=env) as proxy:
        base = url(proxy, certs, "verify-full", sslrootcert=str(certs.ca))
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(base)
        assert ssl_in_use(f"{base}&sslcert={certs.client_cert}&sslkey={certs.client_key}")
        assert "Traceback" not in proxy.log()


def test_tls_that_fails_ends_the_session_quietly(tls_proxy: ProxyProcess, certs: Certs) -> None:
    """A client that asks for TLS and then speaks garbage (or hangs up)."""
    import socket

    with socket.create_connection(("127.0.0.1", tls_proxy.port)) as sock:
        sock.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # SSLRequest
        assert sock.recv(1) == b"S"
        sock.sendall(b"this is not a TLS ClientHello" * 10)
        sock.settimeout(5)
        assert sock.recv(100) in (b"",) or True  # the proxy closes; nothing to assert on
    assert ssl_in_use(url(tls_proxy, certs, "require"))  # the proxy is fine
    assert "Traceback" not in tls_proxy.log()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WRITEPROXY_TLS_CERT_FILE": "/nonexistent.pem"}, "tls_key_file go together"),
        (
            {"WRITEPROXY_TLS_CERT_FILE": "/nonexistent.pem", "WRITEPROXY_TLS_KEY_FILE": "/x.key"},
            "cannot load tls_cert_file /nonexistent.pem",
        ),
        ({"WRITEPROXY_TLS_MODE": "require"}, "tls_mode=require needs tls_cert_file"),
    ],
)
def test_bad_tls_settings_stop_the_proxy_at_startup(
    pg: LocalPostgres, env: dict[str, str], message: str
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--upstream",
            pg.url,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=60,
    )
    assert done.returncode != 0
    assert message in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


# -- proxy -> a TLS-only PostgreSQL -----------------------------------------------------------


#: A role that logs in with SCRAM on the TLS-only server (which then offers -PLUS).
SCRAM_TLS_USER = "scram_tls"


def _tls_server(certs: Certs, root: Path, hba_lines: list[str]) -> Iterator[LocalPostgres]:
    """A PostgreSQL offering TLS with the test's certificate, and a SCRAM role."""
    data = root / "data"
    server = LocalPostgres(data, port=free_port(), bin_dir=pg_bin_for_tests(), hba_lines=hba_lines)
    server.init()
    for name in ("server.pem", "server.key"):
        shutil.copy(certs.cert if name.endswith("pem") else certs.key, data / name)
        os.chmod(data / name, 0o600)
        if os.geteuid() == 0:
            shutil.chown(data / name, server._user, server._user)  # type: ignore[arg-type]
    server.settings = {
        "ssl": "on",
        "ssl_cert_file": "server.pem",
        "ssl_key_file": "server.key",
    }
    server.start()
    try:
        with psycopg.connect(server.url + "?sslmode=require", autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {SCRAM_TLS_USER} LOGIN PASSWORD '{SCRAM_PASSWORD}'")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_pg(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A PostgreSQL that accepts only TLS connections (hostnossl: reject)."""
    yield from _tls_server(
        certs,
        tmp_path_factory.mktemp("tlspg"),
        [
            "hostnossl all all 127.0.0.1/32 reject",
            f"hostssl all {SCRAM_TLS_USER} 127.0.0.1/32 scram-sha-256",
        ],
    )


@pytest.fixture(scope="module")
def tls_optional_pg(
    certs: Certs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPostgres]:
    """A PostgreSQL that offers TLS and accepts plaintext too (libpq's sslmode=prefer)."""
    yield from _tls_server(
        certs,
        tmp_path_factory.mktemp("tlsoptpg"),
        [f"host all {SCRAM_TLS_USER} 127.0.0.1/32 scram-sha-256"],
    )


def upstream(server: LocalPostgres, query: str) -> str:
    return f"postgresql://postgres@127.0.0.1:{server.port}/postgres?{query}"


@pytest.mark.parametrize(
    "query", ["sslmode=require", "sslmode=verify-full&sslrootcert={ca}", "sslmode=prefer"]
)
def test_sessions_reach_a_tls_only_upstream(
    tls_pg: LocalPostgres, certs: Certs, tmp_path: Path, query: str
) -> None:
    target = upstream(tls_pg, query.format(ca=certs.ca))
    with run_proxy(tmp_path, "--upstream", target) as proxy, psycopg.connect(proxy.url()) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (True,)


def test_upstream_verification_failures_and_plaintext_are_refused(
    tls_pg: LocalPostgres, certs: Certs, tmp_path: Path
) -> None:
    wrong_ca = upstream(tls_pg, f"sslmode=verify-full&sslrootcert={certs.other_ca}")
    with run_proxy(tmp_path, "--upstream", wrong_ca) as proxy:
        with pytest.raises(psycopg.OperationalError, match="could not connect to the upstream"):
            psycopg.connect(proxy.url())
        assert "certificate verify failed" in proxy.log()
    plaintext = upstream(tls_pg, "sslmode=disable")
    with (
        run_proxy(tmp_path, "--upstream", plaintext) as proxy,
        pytest.raises(psycopg.OperationalError, match="no encryption"),
    ):
        psycopg.connect(proxy.url())


def test_require_against_a_server_without_tls_fails_clearly(
    pg: LocalPostgres, tmp_path: Path
) -> None:
    plain_server = pg.url + "?sslmode=require"
    with run_proxy(tmp_path, "--upstream", plain_server) as proxy:
        with pytest.raises(psycopg.OperationalError) as refused:
            psycopg.connect(proxy.url())
        assert "does not support TLS" in str(refused.value)


def test_sighup_rotates_the_certificate(pg: LocalPostgres, certs: Certs, tmp_path: Path) -> None:
    """A renewed certificate (same files, new contents) is shown to new sessions after
    SIGHUP, without a restart; sessions already open keep theirs."""
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    for source, target in ((certs.cert, cert), (certs.key, key)):
        target.write_bytes(source.read_bytes())
        target.chmod(0o600)
    env = {"WRITEPROXY_TLS_CERT_FILE": str(cert), "WRITEPROXY_TLS_KEY_FILE": str(key)}
    with run_proxy(tmp_path, "--upstream", pg.url, env=env) as proxy:
        kept = psycopg.connect(url(proxy, certs, "verify-full", sslrootcert=str(certs.ca)))
        renewed = trustme.CA()
        issued = renewed.issue_cert("localhost", "127.0.0.1")
        issued.private_key_and_cert_chain_pem.write_to_path(cert)
        issued.private_key_pem.write_to_path(key)
        new_ca = tmp_path / "new-ca.pem"
        renewed.cert_pem.write_to_path(new_ca)
        proxy.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while "configuration read again" not in proxy.log():
            assert time.monotonic() < deadline, proxy.log()
            time.sleep(0.1)
        assert ssl_in_use(url(proxy, certs, "verify-full", sslrootcert=str(new_ca)))
        with pytest.raises(psycopg.OperationalError):
            ssl_in_use(url(proxy, certs, "verify-full", sslrootcert=str(certs.ca)))
        assert kept.execute("SELECT 1").fetchone() == (1,)
        kept.close()


def test_scram_channel_binding_through_a_tls_upstream_is_refused_clearly(
    tls_pg: LocalPostgres, certs: Certs, tmp_path: Path
) -> None:
    """The server offers SCRAM-SHA-256-PLUS on its TLS connection from the proxy; the
    proxy cannot relay the binding (it would be to its own certificate) and withholds
    it. A client over TLS that could bind (libpq's default channel_binding=prefer) then
    says so, which the server takes for a downgrade: refused by the proxy first, with
    the way out; with channel_binding=disable the same login works."""
    target = upstream(tls_pg, "sslmode=require")
    with run_proxy(tmp_path, "--upstream", target, env=tls_env(certs)) as proxy:
        dsn = (
            f"postgresql://{SCRAM_TLS_USER}:{SCRAM_PASSWORD}@localhost:{proxy.port}/postgres"
            f"?sslmode=verify-full&sslrootcert={certs.ca}"
        )
        with pytest.raises(psycopg.OperationalError, match="channel binding cannot pass") as e:
            psycopg.connect(dsn)
        assert "channel_binding=disable" in str(e.value)
        with psycopg.connect(dsn + "&channel_binding=disable") as conn:
            assert conn.execute("SELECT current_user").fetchone() == (SCRAM_TLS_USER,)
            assert conn.pgconn.ssl_in_use


def test_scram_channel_binding_goes_on_over_plaintext_when_the_upstream_allows_it(
    tls_optional_pg: LocalPostgres, certs: Certs, tmp_path: Path
) -> None:
    """Upstream sslmode=prefer (the default): a client that could bind is carried on a
    plaintext upstream connection, where the server offers plain SCRAM, instead of
    being refused — the client's own TLS to the proxy stays."""
    target = upstream(tls_optional_pg, "sslmode=prefer")
    with run_proxy(tmp_path, "--upstream", target, env=tls_env(certs)) as proxy:
        dsn = (
            f"postgresql://{SCRAM_TLS_USER}:{SCRAM_PASSWORD}@localhost:{proxy.port}/postgres"
            f"?sslmode=verify-full&sslrootcert={certs.ca}"
        )
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
            assert row == (SCRAM_TLS_USER, False) and conn.pgconn.ssl_in_use
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(dsn.replace(SCRAM_PASSWORD, "wrong"))
        # Users that do not use SCRAM keep a TLS upstream.
        with psycopg.connect(url(proxy, certs, "verify-full", sslrootcert=str(certs.ca))) as conn:
            row = conn.execute(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
            assert row == (True,)
