"""Where the upstream PostgreSQL is, parsed from a libpq-style ``postgresql://`` URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from proxy.tls import SSL_MODES, UpstreamTls

DEFAULT_PORT = 5432


@dataclass(frozen=True)
class UpstreamAddress:
    """Host (or Unix-socket directory) and port, plus the URL's own credentials,
    which the proxy uses only for its side connections: client sessions always
    authenticate upstream as themselves."""

    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    tls: UpstreamTls = field(default_factory=UpstreamTls)

    @property
    def is_unix_socket(self) -> bool:
        return self.host.startswith("/")

    @property
    def unix_socket_path(self) -> str:
        return f"{self.host}/.s.PGSQL.{self.port}"


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def parse_upstream_url(url: str) -> UpstreamAddress:
    """Parse ``postgresql://user:pass@host:port/db?host=/dir&sslmode=...``."""
    try:
        parts = urlsplit(url)
        port_text = parts.port
    except ValueError:
        raise ValueError(f"invalid upstream URL {redacted_loose(url)!r}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"upstream URL must start with postgresql://, got {redacted(url)!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    sslmode = query.get("sslmode", "prefer")
    if sslmode not in SSL_MODES:
        raise ValueError(f"sslmode must be one of {', '.join(SSL_MODES)}, got {sslmode!r}")
    tls = UpstreamTls(
        mode=sslmode,
        rootcert=query.get("sslrootcert"),
        cert=query.get("sslcert"),
        key=query.get("sslkey"),
    )
    host = query.get("host") or unquote(parts.hostname or "") or "localhost"
    try:
        port = int(query.get("port") or port_text or DEFAULT_PORT)
    except ValueError:
        raise ValueError(f"invalid port in upstream URL {redacted(url)!r}") from None
    return UpstreamAddress(
        host=host,
        port=port,
        user=unquote(parts.username) if parts.username else query.get("user"),
        password=unquote(parts.password) if parts.password else query.get("password"),
        database=unquote(parts.path.lstrip("/")) or query.get("dbname") or None,
        tls=tls,
    )


def redacted_loose(url: str) -> str:
    """A URL urlsplit cannot read, with anything between ``:`` and ``@`` hidden."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, at, location = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***{at}{location}"
