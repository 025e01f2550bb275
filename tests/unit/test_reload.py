"""proxy.reload: which settings a SIGHUP applies, and an invalid file changing nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from proxy.config import CONFIG_ENV, Settings
from proxy.reload import RELOADABLE, apply_log_level, read_again


def test_every_reloadable_name_is_a_setting() -> None:
    assert set(Settings.model_fields) >= RELOADABLE


def test_only_reloadable_settings_change_and_the_rest_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "writeproxy.toml"
    config.write_text('log_level = "INFO"\nworkers = 1\n')
    monkeypatch.setenv(CONFIG_ENV, str(config))
    current = Settings()
    config.write_text('log_level = "DEBUG"\nworkers = 3\nmax_client_conn = 50\n')
    with caplog.at_level(logging.WARNING, logger="proxy.reload"):
        reloaded = read_again(current)
    assert reloaded is not None
    assert reloaded.changed == {"log_level", "max_client_conn"}
    assert reloaded.settings.log_level == "DEBUG" and reloaded.settings.workers == 1
    assert "workers changed; restart writeproxy to apply" in caplog.text


def test_a_reloaded_log_level_keeps_http_client_urls_at_debug_only() -> None:
    """httpx logs each request's URL (row values: external ids, SOQL) at INFO: its
    level follows the proxy's, in either direction, as at startup."""
    saved = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore")}
    try:
        apply_log_level("DEBUG")
        assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)
        apply_log_level("INFO")
        assert logging.getLogger().getEffectiveLevel() == logging.INFO
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("max_client_conn = -1\n", "max_client_conn"),
        # never the values given: a URL's password stays out of the log
        ('upstream_url = "postgresql://u:hunter2@127.0.0.1:99999999/db"\n', "upstream_url"),
    ],
)
def test_an_invalid_file_changes_nothing_and_logs_no_values(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    text: str,
    named: str,
) -> None:
    config = tmp_path / "writeproxy.toml"
    config.write_text("max_client_conn = 10\n")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    current = Settings()
    config.write_text(text)
    with caplog.at_level(logging.ERROR, logger="proxy.reload"):
        assert read_again(current) is None
    assert "the running one stays" in caplog.text and named in caplog.text
    assert "hunter2" not in caplog.text
