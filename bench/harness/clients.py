"""How the benchmark's own clients (psql, pgbench) reach a target.

Every target listens on loopback and is reached as the same user and database;
the clients run with an environment cleaned of ``PG*`` variables so nothing in
the caller's shell can point them elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

HOST = "127.0.0.1"
USER = "postgres"
DATABASE = "postgres"
Completed = subprocess.CompletedProcess[str]


def conn_args(port: int) -> list[str]:
    """libpq command-line connection options for ``port`` on loopback."""
    return ["-h", HOST, "-p", str(port), "-U", USER, "-d", DATABASE]


def client_env() -> dict[str, str]:
    """Our environment without PG* variables that could redirect the clients."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def client_tool(bin_dir: Path, name: str) -> str:
    """``name`` from ``bin_dir`` when it is there, else from PATH."""
    candidate = bin_dir / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found in {bin_dir} nor on PATH")
    return found


def run_psql(psql: str, port: int, sql: str, timeout: float | None = None) -> Completed:
    """Run one statement through ``port`` with psql (unaligned, tuples only)."""
    return subprocess.run(
        [psql, *conn_args(port), "-X", "-A", "-t", "-c", sql],
        capture_output=True,
        text=True,
        env=client_env(),
        timeout=timeout,
        check=False,
    )


def select_one(psql: str, port: int, timeout: float) -> str:
    """Run ``select 1`` through ``port``: empty on success, else what went wrong."""
    try:
        check = run_psql(psql, port, "select 1", timeout)
    except subprocess.TimeoutExpired:
        return f"select 1 hung for {timeout:.0f}s"
    if check.returncode == 0 and check.stdout.strip() == "1":
        return ""
    return (check.stderr or check.stdout).strip() or f"psql exit {check.returncode}"


def server_version(psql: str, port: int) -> str:
    """``server_version`` of the cluster on ``port``."""
    result = run_psql(psql, port, "show server_version")
    result.check_returncode()
    return result.stdout.strip()
