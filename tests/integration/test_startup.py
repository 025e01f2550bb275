"""Starting before PostgreSQL (as a service manager may): the proxy waits for it with
backoff, says why in its log, starts once it answers, and stops cleanly if told to
while it waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from proxy.embedded import LocalPostgres
from tests.conftest import HUBSPOT_TOKEN_ENV
from tests.support import REPO, free_port, pg_bin_for_tests, wait_for_port


def test_the_proxy_waits_for_postgresql_then_starts(tmp_path: Path) -> None:
    pg_port, port = free_port(), free_port()
    config = tmp_path / "writeproxy.toml"
    config.write_text(
        f"""
[connectors.hubspot]
kind = "hubspot"
base_url = "http://127.0.0.1:9"
token_env = "{HUBSPOT_TOKEN_ENV}"
schema = "hubspot"
"""
    )
    env = {**os.environ, "WRITEPROXY_CONFIG": str(config), HUBSPOT_TOKEN_ENV: "t"}
    log_path = tmp_path / "proxy.log"
    server = LocalPostgres(tmp_path / "pg", port=pg_port, bin_dir=pg_bin_for_tests())
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--upstream",
                f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
            text=True,
        )
    try:
        deadline = time.monotonic() + 20
        while "is not reachable" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        server.start()
        wait_for_port(port, process, log_path, timeout=60)
        assert "Traceback" not in log_path.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        server.stop()


def test_told_to_stop_while_waiting_it_stops_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "writeproxy.toml"
    config.write_text(
        f'[connectors.hubspot]\nkind = "hubspot"\ntoken_env = "{HUBSPOT_TOKEN_ENV}"\n'
        'schema = "hubspot"\n'
    )
    env = {**os.environ, "WRITEPROXY_CONFIG": str(config), HUBSPOT_TOKEN_ENV: "t"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--upstream",
            f"postgresql://u:hunter2@127.0.0.1:{free_port()}/db",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env=env,
        text=True,
    )
    time.sleep(3)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "is not reachable" in output and "Traceback" not in output
    assert "hunter2" not in output
