"""pgjdbc through the proxy: a small Java program (tests/compat/jdbc/Probe.java,
compiled once per session) prints what the driver sees as JSON lines; pass-through
must match a direct connection and synced writes must match the sandbox."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.support import ProxyProcess, Sandbox
from tests.synced import Harness, harness

JAR = Path("/usr/share/java/postgresql.jar")  # Debian's libpostgresql-jdbc-java
SOURCE = Path(__file__).parent / "jdbc" / "Probe.java"
Steps = dict[str, dict[str, Any]]


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled probe's class directory (the .class files never enter the repo)."""
    if not JAR.exists() or shutil.which("javac") is None:
        pytest.fail("pgjdbc or javac missing: run scripts/install-jvm-ruby-clients")
    classes = tmp_path_factory.mktemp("jdbc")
    subprocess.run(
        ["javac", "-d", str(classes), "-cp", str(JAR), str(SOURCE)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return classes


def run(classes: Path, scenario: str, url: str, **params: object) -> Steps:
    """Run one scenario against a ``postgresql://`` URL; the steps by name."""
    parts = urlsplit(url)
    query = urlencode({"user": parts.username, **params})
    jdbc = f"jdbc:postgresql://{parts.hostname}:{parts.port}{parts.path}?{query}"
    done = subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-cp", f"{JAR}:{classes}", "Probe", scenario, jdbc],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    steps = [json.loads(line) for line in done.stdout.splitlines()]
    return {step.pop("step"): step for step in steps}


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


MODES = {
    "unnamed": {"prepareThreshold": 0},
    "named": {"prepareThreshold": 1},
    "default": {},
    "simple": {"preferQueryMode": "simple"},
}


@pytest.mark.parametrize("mode", list(MODES))
def test_reads_batches_transactions_errors_match_direct(
    probe: Path, proxy: ProxyProcess, direct_url: str, mode: str
) -> None:
    """prepareThreshold=0 uses the unnamed statement only; 1 parses named server-side
    statements at once; the default (5) switches to them on the fifth execution;
    preferQueryMode=simple sends Query messages with the parameters inlined."""
    direct = run(probe, "reads", direct_url, **MODES[mode])
    through = run(probe, "reads", proxy.url(), **MODES[mode])
    assert through == direct
    assert bool(through["prepared-reuse"]["server_statements"]) == (mode in ("named", "default"))
    assert through["batch"]["counts"] == [1] * 100
    # Extended: one implicit transaction up to the Sync; simple: one Query per row.
    kept = [["f0"], ["f1"], ["f3"]] if mode == "simple" else []
    assert through["after-batch-failing"]["rows"] == kept
    assert len(through["batch-generated-keys"]["keys"]) == 3
    assert through["transaction"]["names"] == [["kept"]]
    assert through["fetch-size"]["sum"] == 20000 * 20001 // 2
    errors = ("error-division", "error-unique", "error-aborted", "error-syntax", "cancel")
    assert [through[e]["error"] for e in errors] == ["22012", "23505", "25P02", "42601", "57014"]


def test_database_metadata_matches_direct(
    probe: Path, synced_proxy: ProxyProcess, synced_url: str
) -> None:
    """DatabaseMetaData (what DBeaver's navigator reads) on the synced schema."""
    direct = run(probe, "metadata", synced_url, prepareThreshold=1)
    through = run(probe, "metadata", synced_proxy.url(db="synced"), prepareThreshold=1)
    assert through == direct
    assert [row[3] for row in through["primary-keys"]["rows"]] == ["id"]


@pytest.mark.parametrize("mode", ["named", "unnamed", "simple"])
def test_synced_writes(hs: Harness, probe: Path, mode: str) -> None:
    steps = run(probe, "synced", hs.url, **MODES[mode])
    vendor = {o["properties"]["email"]: o for o in hs.sandbox.objects()}  # type: ignore[index]
    for i in range(3):
        [[ident, email]] = steps[f"insert-returning-{i}"]["rows"]
        assert (email, vendor[email]["id"]) == (f"j{i}@example.com", ident)
        assert vendor[email]["properties"]["lastname"] == f"L{i}"  # type: ignore[index]
    assert steps["generated-keys"]["count"] == 1 and len(steps["generated-keys"]["keys"]) == 1
    assert "keys@example.com" not in vendor  # deleted: archived at the vendor
    assert steps["duplicate"]["error"] == "23505"
    assert steps["duplicate"]["table"] == "contact"
    # The local unique constraint decides first: PostgreSQL's own detail.
    assert "(j0@example.com) already exists" in steps["duplicate"]["detail"]
    [[contact_id]] = steps["signup"]["contact"]
    assert vendor["ada@example.com"]["id"] == contact_id
    assert hs.local("SELECT user_id FROM hubspot.contact WHERE id = %s", contact_id) == [
        (int(steps["signup"]["user_id"]),)
    ]
    assert steps["duplicate-in-transaction"]["error"] == "23505"
    assert steps["after-rollback"]["ghosts"] == "0"
    assert [s["count"] for n, s in steps.items() if n.startswith("update")] == [1, 1, 1]
    assert steps["delete"]["count"] == 1
    assert [row[0] for row in steps["final"]["rows"]] == [vendor[e]["id"] for e in sorted(vendor)]


@pytest.mark.parametrize("rewrite", [False, True], ids=["pipelined", "rewritten"])
def test_synced_execute_batch(hs: Harness, probe: Path, rewrite: bool) -> None:
    """executeBatch in autocommit is all or nothing, as on an ordinary table (see
    "batch-failing" in the reads scenario). Pipelined (the default), pgjdbc sends
    Parse/Bind/Execute per row and one Sync: each synced row is its own API call inside
    the block the proxy opens for the batch; when a row fails, the block is rolled back
    and the rows created before it are archived at the vendor. With
    reWriteBatchedInserts=true the batch is one multi-row INSERT: one vendor batch call."""
    options = {"prepareThreshold": 1, "reWriteBatchedInserts": str(rewrite).lower()}
    steps = run(probe, "synced-batch", hs.url, **options)
    emails = [f"b{i}@example.com" for i in range(5)]
    assert steps["batch"]["error"] is None
    assert steps["batch-counts"]["counts"] == ([-2] * 4 + [1] if rewrite else [1] * 5)
    assert [row[1] for row in steps["after-batch"]["rows"]] == emails
    failed = steps["batch-with-duplicate"]
    assert (failed["error"], failed["batch"]) == ("23505", [-3] * 4)
    kept = ["t0@example.com", "t1@example.com"]  # a batch committed by the client
    assert steps["batch-in-transaction"]["error"] is None
    assert [row[1] for row in steps["final"]["rows"]] == sorted(emails + kept)
    creates = [
        r
        for r in hs.sandbox.vendor_requests()
        if r["method"] == "POST" and "archive" not in str(r["path"])
    ]
    # Rewritten: a batch call for 4 rows and a single create; the batch with the
    # duplicate fails on the local unique constraint before any call.
    # Pipelined: 5 creates, then c0 and c1 (the duplicate fails locally first, c3 is
    # skipped until Sync; c0 and c1 are archived again when the block rolls back).
    # Then t0 and t1 (one batch call rewritten).
    assert len(creates) == (2 + 1 if rewrite else 5 + 2 + 2)


def test_reads_match_direct_through_a_proxy_with_synced_tables(
    probe: Path, synced_proxy: ProxyProcess, synced_url: str
) -> None:
    """The same pass-through scenario where every Parse is classified for synced writes."""
    direct = run(probe, "reads", synced_url, prepareThreshold=1)
    through = run(probe, "reads", synced_proxy.url(db="synced"), prepareThreshold=1)
    assert through == direct
