"""Authentication is relayed: the client's own credentials reach PostgreSQL, which
runs the exchange (SCRAM-SHA-256, md5, cleartext), and failures look the same."""

from __future__ import annotations

import asyncpg
import psycopg
import pytest

from tests.support import (
    CLEAR_PASSWORD,
    CLEAR_USER,
    MD5_PASSWORD,
    MD5_USER,
    SCRAM_PASSWORD,
    SCRAM_USER,
    ProxyProcess,
)

USERS = [(SCRAM_USER, SCRAM_PASSWORD), (MD5_USER, MD5_PASSWORD), (CLEAR_USER, CLEAR_PASSWORD)]


def with_port(url: str, user: str, password: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://{user}:{password}@")


@pytest.mark.parametrize(("user", "password"), USERS)
def test_password_methods_relayed(proxy: ProxyProcess, user: str, password: str) -> None:
    with psycopg.connect(proxy.url(user, password)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)


@pytest.mark.parametrize(("user", "password"), USERS)
async def test_password_methods_asyncpg(proxy: ProxyProcess, user: str, password: str) -> None:
    conn = await asyncpg.connect(proxy.url(user, password))
    try:
        assert await conn.fetchval("SELECT current_user") == user
    finally:
        await conn.close()


@pytest.mark.parametrize("user", [SCRAM_USER, MD5_USER, CLEAR_USER, "no_such_user"])
def test_wrong_password_same_error_as_direct(
    proxy: ProxyProcess, direct_url: str, user: str
) -> None:
    def failure(url: str) -> str:
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(with_port(url, user, "wrong"))
        # libpq prefixes the server's message with the address it connected to.
        text = str(info.value)
        return text[text.index("FATAL") :]

    assert failure(proxy.url()) == failure(direct_url)
    expected = "does not exist" if user == "no_such_user" else "password authentication failed"
    assert expected in failure(direct_url)


@pytest.mark.parametrize("user", [SCRAM_USER, MD5_USER])
async def test_wrong_password_sqlstate(proxy: ProxyProcess, direct_url: str, user: str) -> None:
    async def failure(url: str) -> tuple[str, str]:
        with pytest.raises(asyncpg.PostgresError) as info:
            await asyncpg.connect(with_port(url, user, "wrong"))
        return info.value.sqlstate, str(info.value)

    assert await failure(proxy.url()) == await failure(direct_url)
    assert (await failure(direct_url))[0] == "28P01"


def test_password_required_but_missing(proxy: ProxyProcess, direct_url: str) -> None:
    def failure(url: str) -> str:
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(url.replace("postgres@", f"{SCRAM_USER}@"), connect_timeout=5)
        text = str(info.value)
        return text[text.index("password") :]

    assert failure(proxy.url()) == failure(direct_url)
