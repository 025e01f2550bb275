"""The README's first command: ``writeproxy demo`` starts the embedded PostgreSQL, the
HubSpot, Salesforce and Stripe sandboxes and the proxy, and the signup it prints works
as printed: one transaction, a local user and an object at each vendor."""

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
        found = re.findall(
            r"curl (http://\S+)/_sandbox/objects/(contacts|Contact|customers)", output
        )
        vendors = {name: base for base, name in found}
        signup = output.split("  BEGIN;", 1)[1].split("  COMMIT;", 1)[0]
        statements = [s.strip() for s in signup.split(";\n") if s.strip()]
        assert len(statements) == 4, statements
        with psycopg.connect(url) as conn:
            answers = [conn.execute(sql).fetchone() for sql in statements]  # type: ignore[arg-type]
            conn.commit()
        (user_id,), (hubspot_id, created), (sf_id, name, sf_created), (cus_id, cus_created) = (
            answers  # type: ignore[misc]
        )
        assert user_id == 1 and created and sf_created and cus_created and name == "Ada Lovelace"
        hubspot = httpx.get(f"{vendors['contacts']}/_sandbox/objects/contacts").json()["results"]
        assert [(o["id"], o["properties"]["email"]) for o in hubspot] == [
            (hubspot_id, "ada@example.com")
        ]
        contacts = httpx.get(f"{vendors['Contact']}/_sandbox/objects/Contact").json()["results"]
        assert [(o["Id"], o["Email"], o["User_Id__c"]) for o in contacts] == [
            (sf_id, "ada@example.com", "1")
        ]
        customers = httpx.get(f"{vendors['customers']}/_sandbox/objects/customers").json()
        assert [(o["id"], o["metadata"]) for o in customers["results"]] == [
            (cus_id, {"user_id": "1"})
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log_path.read_text()
    # Everything it started is stopped: no postgres left on the demo's data directory.
    assert not (tmp_path / "data" / "pgdata" / "postmaster.pid").exists()
