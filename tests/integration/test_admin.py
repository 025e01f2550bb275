"""The admin endpoint: /healthz, /readyz (the catalog is loaded and PostgreSQL answers)
and /metrics in Prometheus text format, merged across worker processes."""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path

import httpx
import psycopg

from proxy.embedded import LocalPostgres
from tests.conftest import synced_config
from tests.support import Sandbox, free_port, run_proxy
from tests.synced import assert_no_drift, clean


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample (labels in any order); 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_health_and_readiness_of_a_two_worker_proxy(
    synced_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    clean(synced_url, sandbox)
    admin_port = free_port()
    env = synced_config(tmp_path, sandbox)
    env["WRITEPROXY_ADMIN_LISTEN"] = f"127.0.0.1:{admin_port}"
    admin = f"http://127.0.0.1:{admin_port}"
    with run_proxy(tmp_path, "--upstream", synced_url, "--workers", "2", env=env) as proxy:
        assert httpx.get(f"{admin}/healthz").text == "ok\n"
        deadline = time.monotonic() + 20
        while httpx.get(f"{admin}/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        conns = [psycopg.connect(proxy.url(db="synced"), autocommit=True) for _ in range(4)]
        try:
            for i, conn in enumerate(conns):  # spread over both workers
                conn.execute(
                    "INSERT INTO hubspot.contact (email) VALUES (%s)", (f"m{i}@example.com",)
                )
            with contextlib.suppress(psycopg.Error):
                conns[0].execute("INSERT INTO hubspot.contact (email) VALUES ('bad')")
            text = httpx.get(f"{admin}/metrics").text
        finally:
            for conn in conns:
                conn.close()
        table = {"table": "hubspot.contact", "kind": "insert"}
        assert metric(text, "writeproxy_synced_statements_total", outcome="ok", **table) == 4
        assert metric(text, "writeproxy_synced_statements_total", outcome="error", **table) == 1
        assert metric(text, "writeproxy_vendor_requests_total", vendor="HubSpot", status="201") == 4
        assert metric(text, "writeproxy_vendor_requests_total", vendor="HubSpot", status="400") == 1
        assert metric(text, "writeproxy_vendor_request_seconds_count", vendor="HubSpot") == 5
        assert metric(text, "writeproxy_client_connections") == 4
        assert metric(text, "writeproxy_client_connections_accepted_total", result="accepted") >= 4
        assert "writeproxy_journal_open_entries" in text
        assert httpx.get(f"{admin}/nope").status_code == 404
        assert httpx.post(f"{admin}/metrics").status_code == 405
        assert "ext-" not in text and "example.com" not in text  # no row values
    assert_no_drift(synced_url, sandbox)


def test_readyz_fails_while_postgresql_is_unreachable(pg: LocalPostgres, tmp_path: Path) -> None:
    admin_port = free_port()
    env = {"WRITEPROXY_ADMIN_LISTEN": f"127.0.0.1:{admin_port}"}
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with run_proxy(tmp_path, "--upstream", dead, env=env):
        ready = httpx.get(f"http://127.0.0.1:{admin_port}/readyz")
        assert ready.status_code == 503 and "unreachable" in ready.text
        assert httpx.get(f"http://127.0.0.1:{admin_port}/healthz").status_code == 200


def test_json_logs_carry_context_and_no_row_values(
    synced_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    clean(synced_url, sandbox)
    env = synced_config(tmp_path, sandbox)
    env["WRITEPROXY_LOG_FORMAT"] = "json"
    sandbox.fault(
        match={"method": "POST", "path_regex": "objects/contacts$"}, status=500, apply=True
    )
    with run_proxy(tmp_path, "--upstream", synced_url, env=env) as proxy:
        with (
            psycopg.connect(proxy.url(db="synced"), autocommit=True) as conn,
            contextlib.suppress(psycopg.Error),
        ):
            backend_pid = conn.info.backend_pid
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('private@example.com')")
        deadline = time.monotonic() + 15
        while "looked up" not in proxy.log():
            assert time.monotonic() < deadline, proxy.log()
            time.sleep(0.2)
        lines = [json.loads(line) for line in proxy.log().splitlines() if line.startswith("{")]
        log = proxy.log()
    assert lines and all({"time", "level", "logger", "pid", "message"} <= set(x) for x in lines)
    [lookup] = [x for x in lines if "looked up" in x["message"]]
    assert lookup["operation"] == "create" and lookup["object_type"] == "contacts"
    assert isinstance(lookup["entry"], int) and isinstance(lookup["xid"], int)
    # The vendor's refusal names the session (and the server pid PostgreSQL's own log
    # shows for it), the statement's transaction and the vendor's request id.
    refused = [x for x in lines if "answered HTTP 500" in x["message"]]
    assert refused, log
    assert {x["backend_pid"] for x in refused} == {backend_pid}
    assert len({x["session"] for x in refused}) == 1 and all(x["xid"] for x in refused)
    assert all(x["vendor"] == "HubSpot" and x["vendor_request_id"] for x in refused)
    assert "private@example.com" not in log
    assert_no_drift(synced_url, sandbox)
