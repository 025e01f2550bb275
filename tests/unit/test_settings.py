"""Settings validation without starting anything: the HubSpot connector's settings,
the connector registry, the synced-table TOML models, the proxy's own settings and
the upstream URL they accept."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from proxy.backend.address import UpstreamAddress, parse_upstream_url
from proxy.config import CONFIG_ENV, Settings, parse_listen
from proxy.connectors import ConnectorConfigError, build_connector, connector_settings
from proxy.connectors.hubspot import HubSpotConnector, HubSpotSettings
from proxy.connectors.salesforce import SalesforceSettings
from proxy.connectors.stripe import StripeSettings
from proxy.tls import UpstreamTls
from proxy.writes.settings import SYNC_COLUMNS, ConnectorSettings, SyncedTableSettings

# --- HubSpotSettings --------------------------------------------------------------


def test_hubspot_defaults() -> None:
    settings = HubSpotSettings(token="pat-secret")
    assert settings.base_url == "https://api.hubapi.com"
    assert settings.batch_size == 100
    assert settings.max_attempts == 5
    assert (settings.rate_limit_requests, settings.rate_limit_interval_s) == (100, 10.0)
    assert (settings.ten_secondly_wait_s, settings.locked_wait_s) == (10.0, 2.0)
    assert settings.token.get_secret_value() == "pat-secret"


def test_hubspot_token_is_never_shown() -> None:
    settings = HubSpotSettings(token="pat-secret")
    assert "pat-secret" not in repr(settings)
    assert "pat-secret" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 0),
        ("batch_size", 101),  # HubSpot's batch endpoints take at most 100
        ("max_attempts", 0),
        ("connect_timeout_s", 0),
        ("read_timeout_s", -1),
        ("backoff_base_s", -0.1),
        ("backoff_cap_s", -1),
        ("ten_secondly_wait_s", -1),
        ("locked_wait_s", -1),
        ("rate_limit_requests", 0),
        ("rate_limit_interval_s", 0),
        ("batch_size", "many"),
    ],
)
def test_hubspot_out_of_range_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        HubSpotSettings.model_validate({"token": "t", field: value})
    [error] = caught.value.errors()
    assert error["loc"] == (field,)


@pytest.mark.parametrize(
    ("field", "value"),
    [("batch_size", 1), ("batch_size", 100), ("backoff_base_s", 0), ("locked_wait_s", 0)],
)
def test_hubspot_boundary_values_are_accepted(field: str, value: object) -> None:
    settings = HubSpotSettings.model_validate({"token": "t", field: value})
    assert getattr(settings, field) == value


def test_hubspot_requires_a_token_and_forbids_unknown_keys() -> None:
    with pytest.raises(ValidationError) as caught:
        HubSpotSettings.model_validate({})
    assert [e["loc"] for e in caught.value.errors()] == [("token",)]
    with pytest.raises(ValidationError) as caught:
        HubSpotSettings.model_validate({"token": "t", "batchsize": 10})
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_hubspot_settings_are_frozen() -> None:
    settings = HubSpotSettings.model_validate({"token": "t"})
    with pytest.raises(ValidationError):
        settings.batch_size = 5  # type: ignore[misc]


async def test_build_connector() -> None:
    connector = build_connector("hubspot", token="t", batch_size=10, base_url="http://x")
    try:
        assert isinstance(connector, HubSpotConnector)
    finally:
        await connector.aclose()


def test_build_connector_unknown_kind_and_bad_settings() -> None:
    with pytest.raises(ValueError) as caught:
        build_connector("pipedrive", token="t")
    assert str(caught.value) == (
        "unknown connector kind 'pipedrive'; known kinds: ['hubspot', 'salesforce', 'stripe']"
    )
    with pytest.raises(ConnectorConfigError, match="batch_size: Input should be less"):
        build_connector("hubspot", token="secret-t", batch_size=500)


# --- [connectors.NAME] and [[synced_tables]] --------------------------------------


def test_connector_settings_pass_extra_keys_to_the_connector() -> None:
    settings = ConnectorSettings.model_validate(
        {
            "kind": "hubspot",
            "token_env": "HS_TOKEN",
            "schema": "hubspot",
            "base_url": "http://127.0.0.1:9",
            "batch_size": 50,
        }
    )
    assert settings.schema_name == "hubspot"
    assert settings.connector_options() == {
        "token_env": "HS_TOKEN",
        "batch_size": 50,
        "base_url": "http://127.0.0.1:9",
    }
    bare = ConnectorSettings.model_validate({"kind": "stripe"})
    assert bare.schema_name is None
    assert bare.connector_options() == {}


def test_connector_settings_require_kind() -> None:
    with pytest.raises(ValidationError) as caught:
        ConnectorSettings.model_validate({"schema": "hubspot"})
    assert {e["loc"] for e in caught.value.errors()} == {("kind",)}


ENV = {"HS": "pat-secret-1", "SF": "sf-secret", "ID": "cid", "SECRET": "cs", "REFRESH": "rt"}


def validated(kind: str, **options: object) -> object:
    return connector_settings("acme", kind, options, ENV)


def test_connector_settings_read_secrets_from_the_environment() -> None:
    hubspot = validated("hubspot", token_env="HS", batch_size=10)
    assert isinstance(hubspot, HubSpotSettings)
    assert hubspot.token.get_secret_value() == "pat-secret-1"
    assert hubspot.batch_size == 10
    oauth = validated(
        "salesforce",
        base_url="https://acme.my.salesforce.com",
        client_id_env="ID",
        client_secret_env="SECRET",
        refresh_token_env="REFRESH",
    )
    assert isinstance(oauth, SalesforceSettings) and oauth.refreshes
    assert oauth.api_version == "v61.0" and oauth.batch_size == 200
    stripe = validated("stripe", token_env="HS", read_timeout_s=3)
    assert isinstance(stripe, StripeSettings) and stripe.read_timeout_s == 3


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("hubspot", {"token_env": "HS", "batch_size": 0}, "batch_size: Input should be greater"),
        ("hubspot", {"token_env": "HS", "batch_sise": 5}, "unknown setting 'batch_sise'"),
        ("hubspot", {}, "token_env is required"),
        ("hubspot", {"token_env": "NOPE"}, "environment variable NOPE (token_env) is not set"),
        ("hubspot", {"token_env": ""}, "token_env must name an environment variable"),
        ("stripe", {"token_env": "HS", "batch_size": 5}, "unknown setting 'batch_size'"),
        (
            "salesforce",
            {"base_url": "https://x", "token_env": "SF", "api_version": "61"},
            "api_version: Value error, must look like v61.0",
        ),
        ("salesforce", {"base_url": "https://x"}, "set token_env (a static access token) or"),
        (
            "salesforce",
            {"base_url": "https://x", "client_id_env": "ID"},
            "OAuth refresh needs client_id_env, client_secret_env and refresh_token_env",
        ),
        ("salesforce", {"token_env": "SF", "batch_size": 201}, "base_url: Field required"),
        ("mailchimp", {}, "unknown connector kind 'mailchimp'"),
    ],
)
def test_connector_settings_errors_name_the_setting(
    kind: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        validated(kind, **options)
    assert message in str(caught.value)
    for secret in ENV.values():
        assert secret not in str(caught.value)


def test_synced_table_settings() -> None:
    entry = SyncedTableSettings.model_validate({"table": "crm.people", "connector": "hs"})
    assert (entry.object, entry.id_column, entry.upsert_keys) == (None, "id", None)
    assert (entry.columns, entry.read_only, entry.local_columns) == ({}, [], [])
    with pytest.raises(ValidationError) as caught:
        SyncedTableSettings.model_validate({"table": "a.b", "connector": "hs", "idcolumn": "x"})
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_sync_columns() -> None:
    assert SYNC_COLUMNS == ("_sync_inserted_at", "_sync_updated_at", "_updated_at")


# --- the proxy's Settings ---------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("WRITEPROXY_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:6543", ("127.0.0.1", 6543)),
        (":5000", ("0.0.0.0", 5000)),
        ("[::1]:6543", ("::1", 6543)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_parse_listen(text: str, address: tuple[str, int]) -> None:
    assert parse_listen(text) == address


@pytest.mark.parametrize("text", ["6543", "host:", "host:0", "host:65536", "host:http", ""])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="listen address must be HOST:PORT"):
        parse_listen(text)


def test_settings_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.listen_address == ("127.0.0.1", 6543)
    assert settings.upstream_url is None
    assert settings.workers == 1
    assert settings.log_level == "INFO"
    with pytest.raises(RuntimeError, match="no upstream configured"):
        _ = settings.upstream


def test_settings_from_environment_and_flags(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WRITEPROXY_WORKERS", "3")
    clean_env.setenv("WRITEPROXY_LOG_LEVEL", "debug")
    settings = Settings(listen=":7000")
    assert settings.workers == 3
    assert settings.log_level == "DEBUG"
    assert settings.listen_address == ("0.0.0.0", 7000)
    assert Settings(workers=2).workers == 2  # flags win


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workers", 0),
        ("workers", 127),
        ("listen", "nowhere"),
        ("upstream_url", "mysql://x"),
        ("upstream_url", "postgresql://h/db?sslmode=bogus"),
        ("upstream_url", "postgresql://h/db?sslmode=verify-full&sslrootcert=/no/such/ca.pem"),
        ("log_level", "LOUD"),
        ("connect_timeout", 0),
        ("max_message_bytes", 10),
    ],
)
def test_settings_reject_invalid_values(
    clean_env: pytest.MonkeyPatch, field: str, value: object
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({field: value})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_settings_from_toml(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "writeproxy.toml"
    config.write_text(
        'upstream_url = "postgresql://app@db:5433/app"\nworkers = 2\n'
        '[connectors.hubspot]\nkind = "hubspot"\ntoken_env = "HS"\nschema = "hubspot"\n'
        '[[synced_tables]]\ntable = "crm.people"\nconnector = "hubspot"\nobject = "contacts"\n'
    )
    clean_env.setenv(CONFIG_ENV, str(config))
    clean_env.setenv("WRITEPROXY_WORKERS", "4")  # the environment wins over the file
    settings = Settings()
    assert settings.workers == 4
    assert settings.upstream == UpstreamAddress("db", 5433, user="app", database="app")
    assert settings.connectors["hubspot"].schema_name == "hubspot"
    assert settings.synced_tables[0].object == "contacts"


def test_settings_toml_errors(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv(CONFIG_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="no such file"):
        Settings()
    broken = tmp_path / "broken.toml"
    broken.write_text("workers = = 2")
    clean_env.setenv(CONFIG_ENV, str(broken))
    with pytest.raises(ValueError, match="cannot read TOML"):
        Settings()
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("wrokers = 2")
    clean_env.setenv(CONFIG_ENV, str(unknown))
    with pytest.raises(ValidationError):
        Settings()


# --- the upstream URL -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("postgresql://h", UpstreamAddress("h", 5432)),
        ("postgres://u:p%40ss@h:6000/d%2Fb", UpstreamAddress("h", 6000, "u", "p@ss", "d/b")),
        (
            "postgresql:///app?host=/run/pg&port=5433",
            UpstreamAddress("/run/pg", 5433, None, None, "app"),
        ),
        ("postgresql://", UpstreamAddress("localhost", 5432)),
        (
            "postgresql://?user=u&password=p&dbname=d&sslmode=disable",
            UpstreamAddress("localhost", 5432, "u", "p", "d", UpstreamTls("disable")),
        ),
    ],
)
def test_parse_upstream_url(url: str, address: UpstreamAddress) -> None:
    assert parse_upstream_url(url) == address


def test_unix_socket_address() -> None:
    address = parse_upstream_url("postgresql:///app?host=/run/pg&port=5433")
    assert address.is_unix_socket
    assert address.unix_socket_path == "/run/pg/.s.PGSQL.5433"
    assert not parse_upstream_url("postgresql://h").is_unix_socket


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://h", "must start with postgresql://"),
        ("postgresql://h?sslmode=verify", "sslmode must be one of disable, allow, prefer"),
        ("postgresql://u:hunter2@h?port=abc", "invalid port"),
        ("postgresql://u:hunter2@h:99999/db", "invalid upstream URL"),
        ("mysql://u:hunter2@h/db", "must start with postgresql://"),
    ],
)
def test_parse_upstream_url_rejects(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_upstream_url(url)
    assert "hunter2" not in str(caught.value)  # never echo the password


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tls_mode": "require"}, "tls_mode=require needs tls_cert_file and tls_key_file"),
        ({"tls_cert_file": "/no/such/cert.pem"}, "tls_cert_file and tls_key_file go together"),
        (
            {"tls_cert_file": "/no/such/cert.pem", "tls_key_file": "/no/such/key.pem"},
            "cannot load tls_cert_file /no/such/cert.pem",
        ),
        ({"tls_client_ca_file": "/ca.pem"}, "tls_client_ca_file needs tls_cert_file"),
    ],
)
def test_tls_settings_are_checked_at_startup(
    clean_env: pytest.MonkeyPatch, values: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**values)  # type: ignore[arg-type]
    assert Settings().effective_tls_mode == "disable"


def test_parse_upstream_url_tls() -> None:
    default = parse_upstream_url("postgresql://u:pw@h/db")
    assert (default.tls.mode, default.tls.attempts, default.tls.required) == ("prefer", True, False)
    assert "pw" not in repr(default)
    full = parse_upstream_url(
        "postgresql://h/db?sslmode=verify-full&sslrootcert=system&sslcert=/c.pem&sslkey=/k.pem"
    )
    assert full.tls == UpstreamTls("verify-full", "system", "/c.pem", "/k.pem")
    assert full.tls.required
    assert UpstreamTls("verify-full", "system").context().check_hostname
    plain = parse_upstream_url("postgresql://h/db?sslmode=disable").tls
    assert not plain.attempts and not plain.required
    required = parse_upstream_url("postgresql://h/db?sslmode=require").tls.context()
    assert required.verify_mode is ssl.CERT_NONE  # libpq: require does not verify
