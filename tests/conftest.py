"""Shared fixtures: one real PostgreSQL per test session and real proxy processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.embedded import LocalPostgres
from tests.support import ProxyProcess, pg_bin_for_tests, run_proxy, start_cluster


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """The upstream PostgreSQL (15 from the machine when present)."""
    server = start_cluster(tmp_path_factory.mktemp("pg") / "data", pg_bin_for_tests())
    yield server
    server.stop("immediate")


@pytest.fixture(scope="session")
def proxy(pg: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    """One proxy worker in front of ``pg``."""
    with run_proxy(tmp_path_factory.mktemp("proxy"), "--upstream", pg.url) as process:
        yield process


@pytest.fixture(scope="session")
def proxy2(pg: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    """Two proxy worker processes sharing one port (SO_REUSEPORT)."""
    with run_proxy(
        tmp_path_factory.mktemp("proxy2"), "--upstream", pg.url, "--workers", "2"
    ) as process:
        yield process


@pytest.fixture
def direct_url(pg: LocalPostgres) -> str:
    return pg.url


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
