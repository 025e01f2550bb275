"""The README's first command: ``writeproxy demo`` starts the embedded PostgreSQL, the
HubSpot sandbox and the proxy, and the signup it prints works as printed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg

from tests.support import REPO, free_port, wait_for_port


def test_demo_signup_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "demo.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "demo",
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=dict(os.environ),
            text=True,
        )
    try:
        wait_for_port(port, process, log_path, timeout=60)
        output = log_path.read_text()
        url = re.search(r"Connect:\s+\S*psql (\S+)", output).group(1)  # type: ignore[union-attr]
        sandbox = re.search(r"curl (http://\S+)/_sandbox/objects/contacts", output).group(1)  # type: ignore[union-attr]
        with psycopg.connect(url) as conn:
            user_id = conn.execute(
                "INSERT INTO public.users (email, first_name) VALUES ('ada@example.com', 'Ada') "
                "RETURNING id"
            ).fetchone()[0]  # type: ignore[index]
            contact_id, created = conn.execute(
                "INSERT INTO hubspot.contact (email, firstname, user_id) "
                "VALUES ('ada@example.com', 'Ada', %s) RETURNING id, createdate",
                (user_id,),
            ).fetchone()  # type: ignore[misc]
            conn.commit()
        assert created is not None
        objects = httpx.get(f"{sandbox}/_sandbox/objects/contacts").json()["results"]
        assert [(o["id"], o["properties"]["email"]) for o in objects] == [
            (contact_id, "ada@example.com")
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log_path.read_text()
    # Everything it started is stopped: no postgres left on the demo's data directory.
    assert not (tmp_path / "data" / "pgdata" / "postmaster.pid").exists()
