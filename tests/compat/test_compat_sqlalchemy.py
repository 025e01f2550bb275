"""SQLAlchemy 2 ORM through the proxy: a sync session over psycopg and an async session
over asyncpg. Pass-through must match a direct connection; synced writes (the Contact
model on hubspot.contact) must match the sandbox, with the id taken from RETURNING."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    FetchedValue,
    ForeignKey,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
)

from tests.support import ProxyProcess, Sandbox
from tests.synced import Harness, clean, harness


class Base(DeclarativeBase):
    pass


class Org(Base):
    __tablename__ = "orgs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    users: Mapped[list[User]] = relationship(back_populates="org", order_by="User.email")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    first_name: Mapped[str | None]
    last_name: Mapped[str | None]
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    org: Mapped[Org | None] = relationship(back_populates="users")
    contacts: Mapped[list[Contact]] = relationship(back_populates="user")


class Contact(Base):
    """The synced table. ``server_default=FetchedValue()`` on the id tells SQLAlchemy
    the database assigns it: the INSERT leaves it out and reads it back with RETURNING;
    the API-set timestamps are left out too and fetched in the same RETURNING
    (``eager_defaults``)."""

    __tablename__ = "contact"
    __table_args__ = {"schema": "hubspot"}
    __mapper_args__ = {"eager_defaults": True}
    id: Mapped[str] = mapped_column(primary_key=True, server_default=FetchedValue())
    email: Mapped[str | None]
    firstname: Mapped[str | None]
    lastname: Mapped[str | None]
    company: Mapped[str | None]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    createdate: Mapped[dt.datetime | None] = mapped_column(server_default=FetchedValue())
    lastmodifieddate: Mapped[dt.datetime | None] = mapped_column(
        server_default=FetchedValue(), server_onupdate=FetchedValue()
    )
    user: Mapped[User | None] = relationship(back_populates="contacts")


def sync_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def async_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


def record_sql(engine: Engine) -> list[str]:
    """The statements SQLAlchemy sends (INSERT/UPDATE/DELETE only)."""
    sent: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.split(None, 1)[0] in ("INSERT", "UPDATE", "DELETE"):
            sent.append(" ".join(statement.split()))

    return sent


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


def vendor_by_email(hs: Harness) -> dict[str, dict[str, Any]]:
    return {o["properties"]["email"]: o for o in hs.sandbox.objects()}  # type: ignore[index, misc]


# -- sync: psycopg ---------------------------------------------------------------------


def orm_reads(url: str) -> dict[str, Any]:
    engine = create_engine(sync_url(url))
    try:
        with Session(engine) as session:
            acme = Org(name="Acme")
            session.add_all(
                [
                    User(email="ada@example.com", first_name="Ada", org=acme),
                    User(email="bob@example.com", first_name="Bob", org=acme),
                    User(email="eve@example.com", first_name="Eve"),
                ]
            )
            session.commit()
            ids = session.scalars(select(User.id).order_by(User.id)).all()
            joined = session.execute(
                select(Org.name, func.count(User.id))
                .join(User.org)
                .group_by(Org.name)
                .order_by(Org.name)
            ).all()
            members = [u.first_name for u in session.scalars(select(Org)).one().users]
            session.add(User(email="ada@example.com"))
            with pytest.raises(IntegrityError) as info:
                session.commit()
            session.rollback()
            with session.begin():
                session.add(User(email="rolled@example.com"))
                session.flush()
                session.get_transaction().rollback()  # type: ignore[union-attr]
            count = session.scalar(select(func.count()).select_from(User))
        return {
            "ids": ids,
            "joined": [tuple(r) for r in joined],
            "members": members,
            "error": info.value.orig.sqlstate,  # type: ignore[union-attr]
            "count": count,
        }
    finally:
        engine.dispose()


def test_orm_reads_match_direct(
    synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox
) -> None:
    clean(synced_url, sandbox)
    direct = orm_reads(synced_url)
    clean(synced_url, sandbox)
    through = orm_reads(synced_proxy.url(db="synced"))
    assert through == direct
    assert through == {
        "ids": [1, 2, 3],
        "joined": [("Acme", 2)],
        "members": ["Ada", "Bob"],
        "error": "23505",
        "count": 3,
    }


@pytest.mark.parametrize("prepare_threshold", [5, 0], ids=["default", "always-prepared"])
def test_orm_contact_lifecycle(hs: Harness, prepare_threshold: int) -> None:
    """psycopg prepares a named statement from the statement's fifth execution by
    default, at the first one with prepare_threshold=0."""
    engine = create_engine(sync_url(hs.url), connect_args={"prepare_threshold": prepare_threshold})
    sent = record_sql(engine)
    try:
        with Session(engine) as session:
            ada = User(email="ada@example.com", first_name="Ada")
            session.add(ada)
            session.flush()
            contact = Contact(email="ada@example.com", firstname="Ada", user=ada)
            session.add(contact)
            session.commit()
            # The id and the API-set columns are left out and read back with RETURNING;
            # unset plain columns are sent as NULL (and not sent to the API).
            assert sent[-1] == (
                "INSERT INTO hubspot.contact (email, firstname, lastname, company, user_id) "
                "VALUES (%(email)s::VARCHAR, %(firstname)s::VARCHAR, %(lastname)s::VARCHAR, "
                "%(company)s::VARCHAR, %(user_id)s::INTEGER) RETURNING hubspot.contact.id, "
                "hubspot.contact.createdate, hubspot.contact.lastmodifieddate"
            )
            [create] = hs.sandbox.vendor_requests()
            properties = {"email": "ada@example.com", "firstname": "Ada", "user_id": str(ada.id)}
            assert create["body"] == {"properties": properties}
            vendor = vendor_by_email(hs)["ada@example.com"]
            assert contact.id == vendor["id"]
            assert contact.createdate is not None

            row = session.execute(
                select(User.first_name, Contact.id).join(User.contacts).where(User.id == ada.id)
            ).one()
            assert tuple(row) == ("Ada", vendor["id"])

            contact.lastname = "Lovelace"
            session.commit()
            assert sent[-1].startswith("UPDATE hubspot.contact SET lastname=")
            assert vendor_by_email(hs)["ada@example.com"]["properties"]["lastname"] == "Lovelace"

            session.delete(contact)
            session.commit()
            assert (
                sent[-1] == "DELETE FROM hubspot.contact WHERE hubspot.contact.id = %(id)s::VARCHAR"
            )
            assert hs.sandbox.objects() == []
    finally:
        engine.dispose()


def test_orm_several_contacts_in_one_flush(hs: Harness) -> None:
    """Without a sentinel column SQLAlchemy cannot rely on a multi-row RETURNING's order
    for a server-generated string key: it sends one INSERT ... RETURNING per object."""
    engine = create_engine(sync_url(hs.url))
    sent = record_sql(engine)
    try:
        with Session(engine) as session:
            contacts = [Contact(email=f"c{i}@example.com", company="Acme") for i in range(3)]
            session.add_all(contacts)
            session.commit()
            vendor = vendor_by_email(hs)
            assert [c.id for c in contacts] == [vendor[c.email]["id"] for c in contacts]  # type: ignore[index]
            assert len([s for s in sent if s.startswith("INSERT")]) == 3
    finally:
        engine.dispose()


def test_orm_bulk_statements(hs: Harness) -> None:
    """ORM-enabled insert() with a list of rows (one multi-row INSERT ... RETURNING, or
    one INSERT per row with sort_by_parameter_order), PostgreSQL's on_conflict_do_update,
    and update()/delete() with a WHERE clause."""
    engine = create_engine(sync_url(hs.url))
    sent = record_sql(engine)
    try:
        with Session(engine) as session:
            rows = [{"email": f"k{i}@example.com"} for i in range(3)]
            ids = session.scalars(insert(Contact).returning(Contact.id), rows).all()
            assert sent[-1].count("VALUES") == 1 and sent[-1].count("), (") == 2
            sorted_rows = [{"email": f"s{i}@example.com"} for i in range(2)]
            returning = insert(Contact).returning(Contact.email, sort_by_parameter_order=True)
            assert session.scalars(returning, sorted_rows).all() == [
                "s0@example.com",
                "s1@example.com",
            ]
            stmt = pg_insert(Contact).values(
                [
                    {"email": "k0@example.com", "firstname": "K"},
                    {"email": "u@example.com", "firstname": "U"},
                ]
            )
            upsert = stmt.on_conflict_do_update(
                index_elements=["email"], set_={"firstname": stmt.excluded.firstname}
            )
            upserted = session.scalars(upsert.returning(Contact.id)).all()
            assert upserted[0] == ids[0]
            changed = update(Contact).where(Contact.email.like("s%")).values(company="S")
            assert session.execute(changed).rowcount == 2  # type: ignore[attr-defined]
            gone = delete(Contact).where(Contact.email == "k2@example.com")
            assert session.execute(gone).rowcount == 1  # type: ignore[attr-defined]
            session.commit()
        vendor = vendor_by_email(hs)
        assert [vendor[f"k{i}@example.com"]["id"] for i in range(2)] == ids[:2]
        assert vendor["k0@example.com"]["properties"]["firstname"] == "K"
        assert vendor["s1@example.com"]["properties"]["company"] == "S"
        assert sorted(vendor) == [
            "k0@example.com",
            "k1@example.com",
            "s0@example.com",
            "s1@example.com",
            "u@example.com",
        ]
    finally:
        engine.dispose()


def test_orm_failing_contact_rolls_back_user(hs: Harness) -> None:
    engine = create_engine(sync_url(hs.url))
    try:
        with Session(engine) as session:
            session.add(Contact(email="taken@example.com"))
            session.commit()
            session.add(User(email="ghost@example.com"))
            session.add(Contact(email="taken@example.com"))
            with pytest.raises(IntegrityError) as info:
                session.commit()
            assert info.value.orig.sqlstate == "23505"  # type: ignore[union-attr]
            session.rollback()
            assert session.scalars(select(User.email)).all() == []
            assert session.scalars(select(Contact.email)).all() == ["taken@example.com"]
    finally:
        engine.dispose()


# -- async: asyncpg --------------------------------------------------------------------


async def async_reads(url: str) -> dict[str, Any]:
    engine = create_async_engine(async_url(url))
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            acme = Org(name="Acme")
            session.add_all(
                [User(email="ada@example.com", org=acme), User(email="bob@example.com")]
            )
            await session.commit()
            joined = (
                await session.execute(
                    select(User.email, Org.name).outerjoin(User.org).order_by(User.email)
                )
            ).all()
            session.add(User(email="bob@example.com"))
            with pytest.raises(IntegrityError) as info:
                await session.commit()
            await session.rollback()
            count = await session.scalar(select(func.count()).select_from(User))
        return {
            "joined": [tuple(r) for r in joined],
            "error": info.value.orig.sqlstate,  # type: ignore[union-attr]
            "count": count,
        }
    finally:
        await engine.dispose()


async def test_async_orm_reads_match_direct(
    synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox
) -> None:
    clean(synced_url, sandbox)
    direct = await async_reads(synced_url)
    clean(synced_url, sandbox)
    through = await async_reads(synced_proxy.url(db="synced"))
    assert through == direct
    assert through["joined"] == [("ada@example.com", "Acme"), ("bob@example.com", None)]
    assert (through["error"], through["count"]) == ("23505", 2)


async def test_async_orm_contact_lifecycle_and_rollback(hs: Harness) -> None:
    engine = create_async_engine(async_url(hs.url))
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            ada = User(email="ada@example.com")
            contact = Contact(email="ada@example.com", firstname="Ada", user=ada)
            session.add(contact)
            await session.commit()
            vendor = vendor_by_email(hs)["ada@example.com"]
            assert (contact.id, contact.user_id) == (vendor["id"], ada.id)

            contact.company = "Analytical Engines"
            await session.commit()
            vendor = vendor_by_email(hs)["ada@example.com"]
            assert vendor["properties"]["company"] == "Analytical Engines"

            session.add(User(email="ghost@example.com"))
            session.add(Contact(email="ada@example.com"))
            with pytest.raises(IntegrityError) as info:
                await session.commit()
            assert info.value.orig.sqlstate == "23505"  # type: ignore[union-attr]
            await session.rollback()
            emails = (await session.scalars(select(User.email).order_by(User.email))).all()
            assert emails == ["ada@example.com"]

            await session.delete(contact)
            await session.commit()
        assert hs.sandbox.objects() == []
    finally:
        await engine.dispose()
