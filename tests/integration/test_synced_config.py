"""Invalid synced-table configuration is reported clearly at startup and the proxy
refuses to start (it never listens)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, free_port

TOKEN_ENV = "WRITEPROXY_TEST_CONFIG_TOKEN"
CONNECTOR = f"""
[connectors.hubspot]
kind = "hubspot"
base_url = "http://127.0.0.1:9"
token_env = "{TOKEN_ENV}"
schema = "hubspot"
"""


def start(
    tmp_path: Path, url: str, toml: str, token: bool = True
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "writeproxy.toml"
    config.write_text(toml)
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    env["WRITEPROXY_CONFIG"] = str(config)
    if token:
        env[TOKEN_ENV] = "secret-token"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--upstream",
            url,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("toml", "token", "message"),
    [
        (
            CONNECTOR.replace('"hubspot"\nbase', '"pipedrive"\nbase'),
            True,
            "unknown connector kind 'pipedrive'",
        ),
        (
            CONNECTOR.replace('"hubspot"\nbase', '"hubspot"\nbatch_size = 500\nbase'),
            True,
            "connector 'hubspot' (kind 'hubspot'): batch_size: Input should be less than or "
            "equal to 100",
        ),
        (
            CONNECTOR.replace('"hubspot"\nbase', '"hubspot"\nbatch_sise = 5\nbase'),
            True,
            "unknown setting 'batch_sise'",
        ),
        (CONNECTOR, False, f"environment variable {TOKEN_ENV} (token_env) is not set"),
        (
            CONNECTOR + '[[synced_tables]]\ntable = "hubspot.nope"\nconnector = "hubspot"\n',
            True,
            "synced table hubspot.nope does not exist upstream",
        ),
        (
            CONNECTOR + '[[synced_tables]]\ntable = "public.users"\nconnector = "hubspot"\n'
            'id_column = "hs_id"\n',
            True,
            "has no id column 'hs_id'",
        ),
        (
            CONNECTOR + '[[synced_tables]]\ntable = "public.users"\nconnector = "crm"\n',
            True,
            "unknown connector 'crm'",
        ),
        (
            CONNECTOR + '[[synced_tables]]\ntable = "users"\nconnector = "hubspot"\n',
            True,
            "must be written as schema.table",
        ),
        (
            CONNECTOR + '[[synced_tables]]\ntable = "public.users"\nconnector = "hubspot"\n'
            'read_only = ["nope"]\n',
            True,
            "read_only names unknown column 'nope'",
        ),
        (
            CONNECTOR + '[[synced_tables]]\ntable = "public.users"\nconnector = "hubspot"\n'
            "colour = 1\n",
            True,
            "colour",
        ),
    ],
    ids=[
        "kind",
        "batch-size",
        "misspelt-key",
        "token",
        "table",
        "id-column",
        "connector",
        "unqualified",
        "read-only",
        "key",
    ],
)
def test_invalid_configuration_refuses_to_start(
    tmp_path: Path, synced_url: str, toml: str, token: bool, message: str
) -> None:
    result = start(tmp_path, synced_url, toml, token)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert "secret-token" not in result.stderr + result.stdout  # secrets are never logged
