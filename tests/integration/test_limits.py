"""Bounded resources: a cap on client connections (53300, logged), a client that floods
its session while the proxy drives a synced write is read no further than
``max_buffered_input_bytes`` (the proxy's memory stays flat and returns to its baseline),
and the open-files limit is raised or warned about at startup."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from proxy.embedded import LocalPostgres
from proxy.server import check_fd_limit
from proxy.wire.framing import message
from tests.integration.test_robustness import RawClient, errors, query, startup_packet
from tests.support import ProxyProcess, Sandbox, run_proxy
from tests.synced import Harness, harness


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_max_client_conn_refuses_with_53300(pg: LocalPostgres, tmp_path: Path) -> None:
    env = {"WRITEPROXY_MAX_CLIENT_CONN": "3"}
    with run_proxy(tmp_path, "--upstream", pg.url, env=env) as proxy:
        held = [psycopg.connect(proxy.url()) for _ in range(3)]
        try:
            with pytest.raises(psycopg.OperationalError) as refused:
                psycopg.connect(proxy.url())
            assert "sorry, too many clients already" in str(refused.value)
            held.pop().close()
            time.sleep(0.2)
            with psycopg.connect(proxy.url()) as conn:  # a slot is free again
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            for conn in held:
                conn.close()
        assert "refusing a client" in proxy.log()


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


def test_a_flood_during_a_synced_write_is_not_buffered(hs: Harness) -> None:
    pid = hs.proxy.process.pid
    hs.sandbox.configure(latency_ms=1500)  # the vendor takes its time
    flood = query("SELECT 1 -- " + "x" * (48 * 1024 * 1024))  # one 48 MiB message
    with RawClient(hs.proxy.port) as client:
        client.send(startup_packet(database="synced"))
        assert errors(client.read_until(b"Z")) == []
        baseline = rss_mib(pid)
        client.send(query("INSERT INTO hubspot.contact (email) VALUES ('flood@example.com')"))
        sender = threading.Thread(target=client.send_quietly, args=(flood,), daemon=True)
        sender.start()
        peak = baseline
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:  # while the vendor call is in flight
            peak = max(peak, rss_mib(pid))
            time.sleep(0.02)
        assert peak - baseline < 16, (baseline, peak)  # read ahead: ~1 MiB, not 48
        client.sock.settimeout(60)
        answers = client.read_until(b"Z")  # the INSERT's answer
        assert errors(answers) == []
        sender.join(60)
        assert errors(client.read_until(b"Z")) == []  # the flood, relayed afterwards
        client.send(message(b"X"))
    hs.sandbox.configure(latency_ms=0)
    time.sleep(0.5)
    assert rss_mib(pid) - baseline < 24
    assert [o["properties"]["email"] for o in hs.sandbox.objects()] == ["flood@example.com"]


def test_a_client_gone_during_a_synced_write_leaves_nothing_behind(hs: Harness) -> None:
    """The session's waiters are woken when the client goes (it used to hang)."""
    hs.sandbox.configure(latency_ms=800)
    with RawClient(hs.proxy.port) as client:
        client.send(startup_packet(database="synced"))
        client.read_until(b"Z")
        client.send(query("BEGIN; INSERT INTO hubspot.contact (email) VALUES ('gone@x.io')"))
        client.send(query("SELECT pg_sleep(0.5)"))
    hs.sandbox.configure(latency_ms=0)
    hs.settle()
    with psycopg.connect(hs.url) as conn:  # the proxy serves on
        assert conn.execute("SELECT count(*) FROM hubspot.contact").fetchone() == (0,)


def test_the_open_files_limit_is_raised_for_max_client_conn() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        wanted = min(hard, 4096) if hard != resource.RLIM_INFINITY else 4096
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        assert check_fd_limit((wanted - 256) // 2) >= wanted - 1
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"stmt",
        b"stmt\0INSERT INTO hubspot.contact",
        b"\0SELECT 1\0\xff\xff",
        b"\0SELECT 1\0\x00\x05\x00\x00",
        b"\xff\xfe\0SELECT 1\0\x00\x00",
    ],
    ids=["empty", "no-query", "unterminated", "huge-count", "short-types", "bad-name"],
)
def test_a_malformed_parse_gets_postgresqls_answer(hs: Harness, body: bytes) -> None:
    """With synced tables the proxy reads every Parse; one it cannot read goes to
    PostgreSQL, which refuses it (08P01) before running anything — no traceback, and
    the session goes on after Sync."""
    before = hs.proxy.log().count("Traceback")
    with RawClient(hs.proxy.port) as client:
        client.send(startup_packet(database="synced"))
        client.read_until(b"Z")
        client.send(message(b"P", body) + message(b"S"))
        answers = client.read_until(b"Z")
        assert [e["sqlstate"] for e in errors(answers)] in (["08P01"], ["22021"], [])
        client.send(query("SELECT 42"))
        assert errors(client.read_until(b"Z")) == []
        client.send(message(b"X"))
    assert hs.proxy.log().count("Traceback") == before


def _burst(urls: list[str], per_url: int) -> None:
    """``per_url`` concurrent synced INSERTs through each of ``urls``."""
    conns = [psycopg.connect(url, autocommit=True) for url in urls for _ in range(per_url)]
    try:
        threads = [
            threading.Thread(
                target=conn.execute,
                args=("INSERT INTO hubspot.contact (email) VALUES (%s)", (f"r{i}@x.io",)),
            )
            for i, conn in enumerate(conns)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for conn in conns:
            conn.close()


def test_workers_share_one_vendor_budget(synced_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
    """Two workers, one HubSpot account allowing 4 requests per 2 s: together they stay
    within it (each used to pace itself to the whole budget: 429s)."""
    from tests.conftest import synced_config
    from tests.synced import assert_no_drift, clean

    clean(synced_url, sandbox)
    sandbox.configure(rate_limit={"max_requests": 4, "window_s": 2})
    env = synced_config(
        tmp_path, sandbox, "read_timeout_s = 5\nrate_limit_requests = 4\nrate_limit_interval_s = 2"
    )
    with run_proxy(tmp_path, "--upstream", synced_url, "--workers", "2", env=env) as proxy:
        _burst([proxy.url(db="synced")], 8)
    statuses = [r["status"] for r in sandbox.vendor_requests()]
    assert statuses.count(201) == 8 and 429 not in statuses, statuses
    sandbox.configure(rate_limit=None)
    assert_no_drift(synced_url, sandbox)


def test_replicas_share_one_vendor_budget_through_postgresql(
    synced_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Two replicas of two workers each, one HubSpot account allowing 4 requests per
    2 s, ``rate_limit_shared``: the four processes take their slots from one window in
    the journal's database, so the account sees no 429 (without it each replica
    spends the whole budget: twice the limit)."""
    from tests.conftest import synced_config
    from tests.synced import assert_no_drift, clean

    clean(synced_url, sandbox)
    sandbox.configure(rate_limit={"max_requests": 4, "window_s": 2})
    tuning = (
        "read_timeout_s = 5\nrate_limit_requests = 4\nrate_limit_interval_s = 2\n"
        'rate_limit_shared = true\nrate_limit_account = "portal-1"'
    )
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    env_a, env_b = synced_config(first, sandbox, tuning), synced_config(second, sandbox, tuning)
    with (
        run_proxy(first, "--upstream", synced_url, "--workers", "2", env=env_a) as a,
        run_proxy(second, "--upstream", synced_url, "--workers", "2", env=env_b) as b,
    ):
        _burst([a.url(db="synced"), b.url(db="synced")], 5)
        with psycopg.connect(synced_url) as conn:
            slots = conn.execute(
                "SELECT count(*) FROM writeproxy.vendor_requests WHERE account = 'portal-1'"
            ).fetchone()
    statuses = [r["status"] for r in sandbox.vendor_requests()]
    assert statuses.count(201) == 10 and 429 not in statuses, statuses
    assert slots is not None and 1 <= slots[0] <= 4  # the window, pruned as it expires
    sandbox.configure(rate_limit=None)
    assert_no_drift(synced_url, sandbox)
