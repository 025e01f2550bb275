"""Settings, from (highest precedence first) command-line flags, ``WRITEPROXY_*``
environment variables, the TOML file named by ``WRITEPROXY_CONFIG``, and defaults."""

from __future__ import annotations

import os
import ssl
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from proxy.backend.address import UpstreamAddress, parse_upstream_url
from proxy.cancel import MAX_WORKERS
from proxy.journal.schema import DEFAULT_SCHEMA, check_schema_name
from proxy.tls import TlsMode, server_context
from proxy.writes.settings import ConnectorSettings, SyncedTableSettings

DEFAULT_PORT = 6543
CONFIG_ENV = "WRITEPROXY_CONFIG"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "writeproxy"


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (all interfaces)."""
    host, sep, port = value.rpartition(":")
    # Port 0 would give every worker a different random port, and no way to know them.
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"listen address must be HOST:PORT with PORT 1-65535, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def describe_invalid(exc: ValidationError) -> str:
    """A settings error as ``key: message`` lines, never the value given (a URL's
    password, a token)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(part) for part in error["loc"]) or "(settings)"
        lines.append(f"{key}: {error['msg']}")
    return "\n".join(lines)


class Settings(BaseSettings):
    """Everything the proxy can be configured with; see the README's table."""

    model_config = SettingsConfigDict(env_prefix="WRITEPROXY_", extra="forbid")

    listen: str = Field(f"127.0.0.1:{DEFAULT_PORT}", description="HOST:PORT to accept clients on")
    upstream_url: str | None = Field(
        None, description="postgresql:// URL of the upstream; unset = embedded PostgreSQL"
    )
    data_dir: Path = Field(default_factory=_default_data_dir, description="embedded data")
    embedded_port: int = Field(0, ge=0, le=65535, description="embedded PostgreSQL port; 0 = any")
    workers: int = Field(1, ge=1, le=MAX_WORKERS, description="processes sharing the port")
    shutdown_timeout: float = Field(30.0, ge=0, description="seconds sessions get to finish")
    connect_timeout: float = Field(10.0, gt=0, description="seconds to reach the upstream")
    authentication_timeout: float = Field(
        60.0, gt=0, description="seconds a client has to complete startup and authentication"
    )
    max_message_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="largest client message accepted"
    )
    max_client_conn: int = Field(
        5_000, ge=1, description="client connections accepted at once (beyond: 53300)"
    )
    listen_backlog: int = Field(
        4096, ge=1, description="pending connections the kernel queues (capped by somaxconn)"
    )
    max_buffered_input_bytes: int = Field(
        1024 * 1024,
        ge=64 * 1024,
        description="client bytes read ahead while the proxy drives a synced write",
    )
    admin_listen: str | None = Field(
        None, description="HOST:PORT of the admin HTTP endpoint (/metrics, /healthz, /readyz)"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: Literal["text", "json"] = Field("text", description="text, or JSON lines")
    connectors: dict[str, ConnectorSettings] = Field(
        default_factory=dict, description="vendor accounts, [connectors.NAME] in TOML"
    )
    synced_tables: list[SyncedTableSettings] = Field(
        default_factory=list, description="explicit synced tables, [[synced_tables]] in TOML"
    )
    sync_roles: list[str] = Field(
        default_factory=list,
        description="roles whose own writes to synced tables the guard lets through (sync tools)",
    )
    journal_schema: str = Field(
        DEFAULT_SCHEMA, description="schema of the write journal in the upstream database"
    )
    journal_recovery_interval: float = Field(
        5.0, gt=0, description="seconds between journal recovery passes"
    )
    journal_retention_days: float = Field(
        7.0, ge=0, description="days settled journal entries are kept (conflicts stay)"
    )
    journal_lease_seconds: float = Field(
        30.0, gt=0, description="seconds a proxy holds a journal entry it works on"
    )
    tls_cert_file: Path | None = Field(None, description="certificate (chain) shown to clients")
    tls_key_file: Path | None = Field(None, description="its private key")
    tls_client_ca_file: Path | None = Field(
        None, description="CA that client certificates must chain to (asks clients for one)"
    )
    tls_mode: TlsMode | None = Field(
        None,
        description="disable, allow (TLS when the client asks) or require (refuse plaintext "
        "sessions); default: allow with a certificate, else disable",
    )

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("admin_listen")
    @classmethod
    def _check_admin_listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value

    @field_validator("upstream_url")
    @classmethod
    def _check_upstream(cls, value: str | None) -> str | None:
        if value is not None:
            tls = parse_upstream_url(value).tls
            if tls.attempts:
                tls.context()  # a CA file that cannot be read is a startup error
        return value

    @model_validator(mode="after")
    def _check_tls(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_mode in ("allow", "require") and self.tls_cert_file is None:
            raise ValueError(f"tls_mode={self.tls_mode} needs tls_cert_file and tls_key_file")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        self.client_tls_context()  # a bad file is a startup error, not a failed session
        return self

    @property
    def effective_tls_mode(self) -> TlsMode:
        if self.tls_mode is not None:
            return self.tls_mode
        return "allow" if self.tls_cert_file is not None else "disable"

    def client_tls_context(self) -> ssl.SSLContext | None:
        """The context clients' TLS sessions use; None when TLS is off."""
        if self.effective_tls_mode == "disable" or self.tls_cert_file is None:
            return None
        assert self.tls_key_file is not None
        return server_context(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)

    @field_validator("journal_schema")
    @classmethod
    def _check_journal_schema(cls, value: str) -> str:
        return check_schema_name(value)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    @property
    def upstream(self) -> UpstreamAddress:
        if self.upstream_url is None:
            raise RuntimeError("no upstream configured")
        return parse_upstream_url(self.upstream_url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = os.environ.get(CONFIG_ENV)
        if toml_file:
            if not Path(toml_file).is_file():
                raise ValueError(f"{CONFIG_ENV}={toml_file}: no such file")
            try:
                toml_source = TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
            except (tomllib.TOMLDecodeError, OSError) as exc:
                raise ValueError(f"{CONFIG_ENV}={toml_file}: cannot read TOML: {exc}") from exc
            sources.append(toml_source)
        return tuple(sources)
