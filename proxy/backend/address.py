"""Where the upstream PostgreSQL is, parsed from a libpq-style ``postgresql://`` URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORT = 5432
#: sslmode values that do not require TLS; TLS to the upstream is not implemented yet.
PLAINTEXT_SSLMODES = frozenset({"disable", "allow", "prefer"})


@dataclass(frozen=True)
class UpstreamAddress:
    """Host (or Unix-socket directory) and port, plus the URL's own credentials,
    which the proxy uses only for its side connections: client sessions always
    authenticate upstream as themselves."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None
    database: str | None = None

    @property
    def is_unix_socket(self) -> bool:
        return self.host.startswith("/")

    @property
    def unix_socket_path(self) -> str:
        return f"{self.host}/.s.PGSQL.{self.port}"


def parse_upstream_url(url: str) -> UpstreamAddress:
    """Parse ``postgresql://user:pass@host:port/db?host=/dir&sslmode=...``."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"upstream URL must start with postgresql://, got {url!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    sslmode = query.get("sslmode", "prefer")
    if sslmode not in PLAINTEXT_SSLMODES:
        raise ValueError(
            f"sslmode={sslmode} is not supported yet: TLS to the upstream is not implemented"
        )
    host = query.get("host") or unquote(parts.hostname or "") or "localhost"
    try:
        port = int(query.get("port") or parts.port or DEFAULT_PORT)
    except ValueError as exc:
        raise ValueError(f"invalid port in upstream URL {url!r}") from exc
    return UpstreamAddress(
        host=host,
        port=port,
        user=unquote(parts.username) if parts.username else query.get("user"),
        password=unquote(parts.password) if parts.password else query.get("password"),
        database=unquote(parts.path.lstrip("/")) or query.get("dbname") or None,
    )
