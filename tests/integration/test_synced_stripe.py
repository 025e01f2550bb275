"""Synced writes to Stripe end to end: real PostgreSQL, the real proxy, the Stripe
sandbox over HTTP, psycopg. Creates, updates and deletes of customers, products,
prices and coupons; what Stripe cannot do (delete a price, change an immutable field,
upsert) refused before any call; Stripe's errors as SQLSTATEs; idempotent retries;
lost answers and rolled-back transactions resolved by the journal. Every test ends
with the no-drift invariant (tests.vendors.assert_no_drift)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from tests.conftest import STRIPE_KEY_ENV, vendors_config
from tests.support import REPO, ProxyProcess, VendorSandbox, free_port, run_proxy
from tests.vendors import Vendors, vendors

INSERT_CUSTOMER = "INSERT INTO stripe.customer (email, name) VALUES (%s, %s) RETURNING id"


@pytest.fixture
def v(
    vendors_proxy: ProxyProcess,
    direct_url: str,
    sf_sandbox: VendorSandbox,
    stripe_sandbox: VendorSandbox,
) -> Iterator[Vendors]:
    synced = direct_url.rsplit("/", 1)[0] + "/synced"
    yield from vendors(vendors_proxy, synced, sf_sandbox, stripe_sandbox)


# -- helpers ----------------------------------------------------------------------------


def clear_log(v: Vendors) -> None:
    v.stripe.http.delete("/_sandbox/requests").raise_for_status()


def writes(v: Vendors) -> list[dict[str, Any]]:
    """The POST and DELETE requests Stripe received (the ones that can change things)."""
    return [r for r in v.stripe.vendor_requests() if r["method"] in ("POST", "DELETE")]


def deleted(v: Vendors, resource: str = "customers") -> list[dict[str, Any]]:
    body = v.stripe.http.get(f"/_sandbox/objects/{resource}", params={"deleted": "true"})
    return list(body.raise_for_status().json()["results"])


def customers(v: Vendors) -> list[dict[str, Any]]:
    return [dict(o) for o in v.stripe.objects("customers")]


def seed_customer(v: Vendors, email: str = "seed@example.com", **fields: Any) -> str:
    """A customer created through the proxy; its Stripe id, with the request log cleared."""
    names = ["email", *fields]
    values = [email, *(Jsonb(x) if isinstance(x, dict) else x for x in fields.values())]
    with psycopg.connect(v.url, autocommit=True) as conn:
        row = conn.execute(
            f"INSERT INTO stripe.customer ({', '.join(names)}) "
            f"VALUES ({', '.join(['%s'] * len(names))}) RETURNING id",
            values,
        ).fetchone()
    assert row is not None
    clear_log(v)
    return str(row[0])


def seed_product(v: Vendors, name: str = "Pro plan") -> str:
    with psycopg.connect(v.url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO stripe.product (name) VALUES (%s) RETURNING id", (name,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def seed_price(v: Vendors, product: str, unit_amount: int = 1500) -> str:
    with psycopg.connect(v.url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO stripe.price (product, currency, unit_amount) VALUES (%s, 'usd', %s) "
            "RETURNING id",
            (product, unit_amount),
        ).fetchone()
    assert row is not None
    clear_log(v)
    return str(row[0])


def assert_usable_after(conn: psycopg.Connection[Any]) -> None:
    """After a failed autocommit statement the session is idle and works."""
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert conn.execute("SELECT 1").fetchone() == (1,)


# -- creates ----------------------------------------------------------------------------


def test_create_customer_returns_stripes_object(v: Vendors) -> None:
    metadata = {"plan": "pro", "seats": "5"}
    address = {"line1": "1 Main St", "city": "Paris", "country": "FR", "postal_code": "75001"}
    with psycopg.connect(v.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO stripe.customer (email, name, metadata, address, preferred_locales) "
            "VALUES (%s, %s, %s, %s, %s) "
            "RETURNING id, created, livemode, email, name, metadata, address, "
            "preferred_locales, balance, delinquent",
            ("ada@example.com", "Ada", Jsonb(metadata), Jsonb(address), ["fr", "en"]),
        )
        row = cur.fetchone()
        assert cur.statusmessage == "INSERT 0 1"
    assert row is not None
    [obj] = customers(v)
    ident, created, livemode, email, name, meta, addr, locales, balance, delinquent = row
    assert ident == obj["id"] and ident.startswith("cus_")
    assert created == datetime.fromtimestamp(obj["created"], UTC)
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=1)
    assert livemode is False and obj["livemode"] is False
    assert (email, name) == (obj["email"], obj["name"]) == ("ada@example.com", "Ada")
    assert meta == obj["metadata"] == metadata
    assert addr == obj["address"]
    assert obj["address"] == {**address, "line2": None, "state": None}
    assert locales == obj["preferred_locales"] == ["fr", "en"]
    assert (balance, delinquent) == (obj["balance"], obj["delinquent"]) == (0, False)
    # One form-encoded request with bracket keys and an idempotency key.
    [post] = writes(v)
    assert post["path"] == "/v1/customers" and post["status"] == 200
    assert post["idempotency_key"]
    body = unquote_plus(str(post["body"]))
    assert "metadata[plan]=pro" in body and "preferred_locales[0]=fr" in body
    assert post["params"]["metadata"] == metadata
    # The local row holds what Stripe holds (read back through the proxy).
    with psycopg.connect(v.url, autocommit=True) as conn:
        assert conn.execute("SELECT currency, tax_exempt FROM stripe.customer").fetchone() == (
            None,
            "none",
        )


def test_update_metadata_removes_a_key_at_stripe(v: Vendors) -> None:
    ident = seed_customer(v, metadata={"plan": "pro", "legacy": "yes"})
    with psycopg.connect(v.url, autocommit=True) as conn:
        row = conn.execute(
            "UPDATE stripe.customer SET metadata = %s, name = 'Ada' WHERE id = %s "
            "RETURNING metadata, name",
            (Jsonb({"plan": "team"}), ident),
        ).fetchone()
    assert row == ({"plan": "team"}, "Ada")
    [obj] = customers(v)
    assert obj["metadata"] == {"plan": "team"}
    # The connector read the object first and sent the removed key as "".
    [update] = [r for r in writes(v) if r["path"] == f"/v1/customers/{ident}"]
    assert update["params"]["metadata"] == {"plan": "team", "legacy": ""}
    assert [r["method"] for r in v.stripe.vendor_requests()] == ["GET", "POST"]


def test_update_metadata_to_empty_clears_every_key(v: Vendors) -> None:
    ident = seed_customer(v, metadata={"a": "1", "b": "2"})
    with psycopg.connect(v.url, autocommit=True) as conn:
        conn.execute("UPDATE stripe.customer SET metadata = '{}' WHERE id = %s", (ident,))
    [obj] = customers(v)
    assert obj["metadata"] == {}


def test_update_to_null_unsets_the_field(v: Vendors) -> None:
    ident = seed_customer(v, name="Ada", phone="+33123456789")
    with psycopg.connect(v.url, autocommit=True) as conn:
        row = conn.execute(
            "UPDATE stripe.customer SET phone = NULL WHERE id = %s RETURNING phone, name",
            (ident,),
        ).fetchone()
    assert row == (None, "Ada")
    [obj] = customers(v)
    assert obj["phone"] is None and obj["name"] == "Ada"


def test_multi_row_insert_is_all_or_nothing(v: Vendors) -> None:
    with psycopg.connect(v.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.CheckViolation) as info:
            conn.execute(
                "INSERT INTO stripe.customer (email, name) VALUES "
                "('a@example.com', 'A'), ('b@example.com', 'B'), ('not-an-email', 'C')"
            )
        diag = info.value.diag
        assert (diag.sqlstate, diag.column_name, diag.table_name) == ("23514", "email", "customer")
        assert "Failed row: 3" in (diag.message_detail or "")
        assert_usable_after(conn)
    assert customers(v) == []
    gone = deleted(v)
    assert sorted(str(o["email"]) for o in gone) == ["a@example.com", "b@example.com"]
    deletes = {str(r["path"]) for r in writes(v) if r["method"] == "DELETE"}
    assert deletes == {f"/v1/customers/{o['id']}" for o in gone}
    assert v.local("SELECT count(*) FROM stripe.customer") == [(0,)]


def test_multi_row_insert_creates_each_row(v: Vendors) -> None:
    with psycopg.connect(v.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO stripe.customer (email, balance) VALUES "
            "('a@example.com', 100), ('b@example.com', -250) RETURNING id, email, balance"
        )
        rows = cur.fetchall()
        assert cur.statusmessage == "INSERT 0 2"
    remote = {o["id"]: (o["email"], o["balance"]) for o in customers(v)}
    assert {r[0]: (r[1], r[2]) for r in rows} == remote
    keys = [r["idempotency_key"] for r in writes(v)]
    assert len(keys) == 2 and len(set(keys)) == 2  # one key per row


# -- retries and lost answers -----------------------------------------------------------


def test_lost_answer_is_retried_with_the_same_idempotency_key(v: Vendors) -> None:
    v.stripe.fault(
        match={"method": "POST", "path_regex": "^/v1/customers$"}, status=500, apply=True
    )
    with psycopg.connect(v.url, autocommit=True) as conn:
        [ident] = conn.execute(INSERT_CUSTOMER, ("ada@example.com", "Ada")).fetchone()  # type: ignore[misc]
    [obj] = customers(v)
    assert obj["id"] == ident
    first, second = writes(v)
    assert first["idempotency_key"] == second["idempotency_key"]
    assert (first["status"], first["replayed"]) == (500, False)
    assert (second["status"], second["replayed"]) == (200, True)
    assert v.local("SELECT id, email FROM stripe.customer") == [(ident, "ada@example.com")]


def test_create_whose_answer_stays_lost_is_undone_by_the_journal(v: Vendors) -> None:
    """Every attempt is applied (then replayed) and answered 500: the statement fails,
    and the journal finds the customer by what the create sent, nested fields included
    (Stripe answers the whole address, the row sent part of it), and deletes it."""
    v.stripe.fault(
        match={"method": "POST", "path_regex": "^/v1/customers$"},
        status=500,
        apply=True,
        times=20,
    )
    with psycopg.connect(v.url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(
                "INSERT INTO stripe.customer (email, name, metadata, address, preferred_locales, "
                "balance) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    "ada@example.com",
                    "Ada",
                    Jsonb({"plan": "pro"}),
                    Jsonb({"city": "Paris", "country": "FR"}),
                    ["fr"],
                    100,
                ),
            )
        assert info.value.sqlstate in ("08007", "57P03")
        assert_usable_after(conn)
    # Stripe did create it (the first attempt applied, the rest were replayed) ...
    posts = [r for r in writes(v) if r["path"] == "/v1/customers"]
    assert len(posts) >= 2 and all(r["replayed"] for r in posts[1:])
    assert len({r["idempotency_key"] for r in posts}) == 1
    assert [o["email"] for o in customers(v)] == ["ada@example.com"]
    v.stripe.http.delete("/_sandbox/faults").raise_for_status()
    v.settle()
    # ... and the journal found it and deleted it again: nothing local, nothing at Stripe.
    assert customers(v) == []
    assert [o["email"] for o in deleted(v)] == ["ada@example.com"]
    assert v.local("SELECT count(*) FROM stripe.customer") == [(0,)]


def test_create_that_times_out_is_retried_and_replayed(v: Vendors) -> None:
    """Stripe applies the create but answers only after the proxy's read timeout (2 s):
    the retry carries the same key, Stripe replays the saved answer, one customer."""
    v.stripe.fault(
        match={"method": "POST", "path_regex": "^/v1/customers$"}, apply=True, delay_ms=2500
    )
    with psycopg.connect(v.url, autocommit=True) as conn:
        [ident] = conn.execute(INSERT_CUSTOMER, ("late@example.com", "Late")).fetchone()  # type: ignore[misc]
    assert [o["id"] for o in customers(v)] == [ident]
    posts = [r for r in writes(v) if r["path"] == "/v1/customers"]
    assert len(posts) == 2 and posts[1]["replayed"] is True
    assert posts[0]["idempotency_key"] == posts[1]["idempotency_key"]


# -- transactions -----------------------------------------------------------------------


def test_rolled_back_customer_is_deleted_at_stripe(v: Vendors) -> None:
    with psycopg.connect(v.url) as conn:
        [ident] = conn.execute(INSERT_CUSTOMER, ("ada@example.com", "Ada")).fetchone()  # type: ignore[misc]
        assert [o["id"] for o in customers(v)] == [ident]
        conn.rollback()
    v.settle()
    assert customers(v) == []
    assert [o["id"] for o in deleted(v)] == [ident]


def test_rolled_back_update_restores_metadata_and_name(v: Vendors) -> None:
    ident = seed_customer(v, name="Ada", metadata={"plan": "pro"})
    with psycopg.connect(v.url) as conn:
        conn.execute(
            "UPDATE stripe.customer SET name = 'Grace', metadata = %s WHERE id = %s",
            (Jsonb({"trial": "yes"}), ident),
        )
        [obj] = customers(v)
        assert (obj["name"], obj["metadata"]) == ("Grace", {"trial": "yes"})
        conn.rollback()
    v.settle()
    [obj] = customers(v)
    assert (obj["name"], obj["metadata"]) == ("Ada", {"plan": "pro"})


def test_rolled_back_price_is_archived(v: Vendors) -> None:
    product = seed_product(v)
    with psycopg.connect(v.url) as conn:
        [price] = conn.execute(  # type: ignore[misc]
            "INSERT INTO stripe.price (product, currency, unit_amount) VALUES (%s, 'eur', 990) "
            "RETURNING id",
            (product,),
        ).fetchone()
        conn.rollback()
    v.settle()
    [obj] = v.stripe.objects("prices")
    assert obj["id"] == price and obj["active"] is False  # Stripe cannot delete a price
    assert v.local("SELECT count(*) FROM stripe.price") == [(0,)]
    [archive] = [r for r in writes(v) if r["path"] == f"/v1/prices/{price}"]
    assert archive["params"] == {"active": "false"}


def test_delete_in_a_rolled_back_transaction_never_reaches_stripe(v: Vendors) -> None:
    ident = seed_customer(v)
    with psycopg.connect(v.url) as conn:
        cur = conn.execute("DELETE FROM stripe.customer WHERE id = %s", (ident,))
        assert cur.rowcount == 1
        conn.rollback()
    v.settle()
    assert writes(v) == []
    assert [o["id"] for o in customers(v)] == [ident]
    assert v.local("SELECT id FROM stripe.customer") == [(ident,)]


def test_committed_delete_deletes_the_customer(v: Vendors) -> None:
    ident = seed_customer(v)
    with psycopg.connect(v.url) as conn:
        conn.execute("DELETE FROM stripe.customer WHERE id = %s", (ident,))
        conn.commit()
    v.settle()
    assert customers(v) == []
    assert [r["path"] for r in writes(v) if r["method"] == "DELETE"] == [f"/v1/customers/{ident}"]
    assert v.local("SELECT count(*) FROM stripe.customer") == [(0,)]


def test_committed_transaction_keeps_customer_and_product(v: Vendors) -> None:
    with psycopg.connect(v.url) as conn:
        conn.execute(INSERT_CUSTOMER, ("ada@example.com", "Ada"))
        conn.execute("INSERT INTO stripe.product (name) VALUES ('Pro')")
        conn.commit()
    v.settle()
    assert [o["email"] for o in customers(v)] == ["ada@example.com"]
    assert [o["name"] for o in v.stripe.objects("products")] == ["Pro"]


# -- what Stripe cannot do: refused before any call -------------------------------------


def test_delete_price_is_refused_with_a_hint(v: Vendors) -> None:
    price = seed_price(v, seed_product(v))
    with psycopg.connect(v.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.FeatureNotSupported) as info:
            conn.execute("DELETE FROM stripe.price WHERE id = %s", (price,))
        assert info.value.sqlstate == "0A000"
        assert "active = false" in (info.value.diag.message_hint or "")
        assert_usable_after(conn)
    assert writes(v) == []
    assert v.local("SELECT id, active FROM stripe.price") == [(price, True)]


def test_update_of_an_immutable_price_field_is_refused(v: Vendors) -> None:
    price = seed_price(v, seed_product(v))
    with psycopg.connect(v.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.FeatureNotSupported) as info:
            conn.execute("UPDATE stripe.price SET unit_amount = 2000 WHERE id = %s", (price,))
        assert info.value.sqlstate == "0A000"
        assert "unit_amount" in str(info.value) + (info.value.diag.column_name or "")
        assert_usable_after(conn)
        assert writes(v) == []
        # What Stripe lets change does change.
        row = conn.execute(
            "UPDATE stripe.price SET active = false, nickname = 'old' WHERE id = %s "
            "RETURNING active, nickname, unit_amount",
            (price,),
        ).fetchone()
    assert row == (False, "old", 1500)
    [obj] = v.stripe.objects("prices")
    assert (obj["active"], obj["nickname"], obj["unit_amount"]) == (False, "old", 1500)


def test_on_conflict_is_refused(v: Vendors) -> None:
    with psycopg.connect(v.url, autocommit=True) as conn:
        for sql in (
            "INSERT INTO stripe.customer (id, email) VALUES ('cus_x', 'a@example.com') "
            "ON CONFLICT (id) DO UPDATE SET email = excluded.email",
            "INSERT INTO stripe.customer (id, email) VALUES ('cus_x', 'a@example.com') "
            "ON CONFLICT DO NOTHING",
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql)
            assert info.value.sqlstate == "0A000", info.value
            assert_usable_after(conn)
    assert v.stripe.vendor_requests() == []


# -- products, prices, coupons ------------------------------------------------------------


def test_product_and_recurring_price(v: Vendors) -> None:
    with psycopg.connect(v.url, autocommit=True) as conn:
        [product, active, updated] = conn.execute(  # type: ignore[misc]
            "INSERT INTO stripe.product (name, description, metadata) "
            "VALUES ('Pro', 'The pro plan', '{\"tier\": \"2\"}') RETURNING id, active, updated"
        ).fetchone()
        assert active is True and updated is not None
        row = conn.execute(
            "INSERT INTO stripe.price (product, currency, unit_amount, recurring, nickname) "
            "VALUES (%s, 'usd', 1500, %s, 'monthly') "
            "RETURNING id, type, recurring, unit_amount, active, created",
            (product, Jsonb({"interval": "month"})),
        ).fetchone()
    assert row is not None
    price, kind, recurring, amount, price_active, created = row
    [obj] = v.stripe.objects("prices")
    assert obj["id"] == price and obj["product"] == product
    assert kind == obj["type"] == "recurring"
    assert recurring == obj["recurring"] and recurring["interval"] == "month"
    assert (amount, price_active) == (1500, True)
    assert created == datetime.fromtimestamp(int(str(obj["created"])), UTC)
    [prod] = v.stripe.objects("products")
    assert prod["metadata"] == {"tier": "2"}


def test_one_time_price(v: Vendors) -> None:
    product = seed_product(v)
    with psycopg.connect(v.url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO stripe.price (product, currency, unit_amount) VALUES (%s, 'usd', 0) "
            "RETURNING type, recurring",
            (product,),
        ).fetchone()
    assert row == ("one_time", None)


def test_coupon_percent_off_is_exact_and_immutable(v: Vendors) -> None:
    with psycopg.connect(v.url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO stripe.coupon (name, percent_off, duration, metadata) "
            "VALUES ('Spring', 12.5, 'once', '{\"campaign\": \"spring\"}') "
            "RETURNING id, percent_off, valid, times_redeemed"
        ).fetchone()
        assert row is not None
        ident, percent_off, valid, redeemed = row
        assert percent_off == Decimal("12.5")
        assert (valid, redeemed) == (True, 0)
        with pytest.raises(pg_errors.FeatureNotSupported):
            conn.execute("UPDATE stripe.coupon SET percent_off = 20 WHERE id = %s", (ident,))
        assert_usable_after(conn)
        conn.execute("UPDATE stripe.coupon SET name = 'Spring sale' WHERE id = %s", (ident,))
    [obj] = v.stripe.objects("coupons")
    assert Decimal(str(obj["percent_off"])) == Decimal("12.5")
    assert (obj["name"], obj["metadata"]) == ("Spring sale", {"campaign": "spring"})
    assert v.local("SELECT percent_off::text FROM stripe.coupon") == [("12.5",)]


def test_coupon_redeem_by_is_sent_as_unix_time(v: Vendors) -> None:
    redeem_by = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    with psycopg.connect(v.url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO stripe.coupon (amount_off, currency, duration, redeem_by) "
            "VALUES (500, 'usd', 'forever', %s) RETURNING redeem_by, amount_off",
            (redeem_by,),
        ).fetchone()
    assert row == (redeem_by, 500)
    [obj] = v.stripe.objects("coupons")
    assert obj["redeem_by"] == int(redeem_by.timestamp())


# -- Stripe's errors as SQLSTATEs ---------------------------------------------------------


def test_429_is_retried(v: Vendors) -> None:
    v.stripe.fault(match={"method": "POST", "path_regex": "^/v1/customers$"}, status=429, times=2)
    with psycopg.connect(v.url, autocommit=True) as conn:
        conn.execute(INSERT_CUSTOMER, ("ada@example.com", "Ada"))
    assert [r["status"] for r in writes(v)] == [429, 429, 200]
    assert len(customers(v)) == 1


def test_rate_limit_that_persists_is_53400_with_nothing_applied(v: Vendors) -> None:
    v.stripe.configure(rate_limit={"max_requests": 1, "window_s": 60})
    try:
        with psycopg.connect(v.url, autocommit=True) as conn:
            conn.execute(INSERT_CUSTOMER, ("first@example.com", "First"))  # the one allowed
            with pytest.raises(pg_errors.ConfigurationLimitExceeded) as info:
                conn.execute(INSERT_CUSTOMER, ("second@example.com", "Second"))
            assert info.value.sqlstate == "53400"
            assert "safe to retry" in (info.value.diag.message_hint or "")
            assert_usable_after(conn)
        statuses = [r["status"] for r in writes(v)]
        assert statuses[0] == 200 and set(statuses[1:]) == {429} and len(statuses) > 2
    finally:
        v.stripe.configure(rate_limit=None)
    assert [o["email"] for o in customers(v)] == ["first@example.com"]
    assert v.local("SELECT email FROM stripe.customer") == [("first@example.com",)]


def test_401_is_28000(v: Vendors) -> None:
    v.stripe.fault(match={"method": "POST", "path_regex": "^/v1/customers$"}, status=401)
    with psycopg.connect(v.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.InvalidAuthorizationSpecification) as info:
            conn.execute(INSERT_CUSTOMER, ("ada@example.com", "Ada"))
        assert info.value.sqlstate == "28000"
        assert_usable_after(conn)
    assert [r["status"] for r in writes(v)] == [401]  # never retried
    assert customers(v) == []


def test_wrong_secret_key_is_28000(v: Vendors, tmp_path: Path) -> None:
    env = vendors_config(tmp_path, v.sf, v.stripe)
    env[STRIPE_KEY_ENV] = "sk_test_wrong_key_1234"
    with run_proxy(tmp_path, "--upstream", v.direct_url, env=env) as proxy:
        with psycopg.connect(proxy.url(db="synced"), autocommit=True) as conn:
            with pytest.raises(pg_errors.InvalidAuthorizationSpecification) as info:
                conn.execute(INSERT_CUSTOMER, ("ada@example.com", "Ada"))
            assert "Invalid API Key" in str(info.value)
            assert "sk_test_wrong_key_1234" not in str(info.value)  # Stripe redacts it
            assert "API token" in (info.value.diag.message_hint or "")
            assert_usable_after(conn)
        assert "sk_test_wrong_key_1234" not in proxy.log()
    assert customers(v) == []


def test_unknown_customer_is_no_data_found(v: Vendors) -> None:
    ident = seed_customer(v)
    v.stripe.http.delete(
        f"/v1/customers/{ident}", headers={"Authorization": "Bearer sk_test_sandbox"}
    ).raise_for_status()
    try:
        with psycopg.connect(v.url, autocommit=True) as conn:
            with pytest.raises(pg_errors.NoDataFound):
                conn.execute("UPDATE stripe.customer SET name = 'Gone' WHERE id = %s", (ident,))
            assert_usable_after(conn)
    finally:
        v.local("DELETE FROM stripe.customer RETURNING id")  # restore the no-drift state


def test_invalid_value_names_the_column(v: Vendors) -> None:
    with psycopg.connect(v.url, autocommit=True) as conn:
        with pytest.raises(pg_errors.CheckViolation) as info:
            conn.execute(
                "INSERT INTO stripe.customer (email, tax_exempt) VALUES ('a@example.com', 'x')"
            )
        assert info.value.diag.column_name == "tax_exempt"
        assert "Vendor request id" in (info.value.diag.message_detail or "")
    assert customers(v) == []


# -- configuration --------------------------------------------------------------------------


def test_column_that_is_not_a_stripe_field_refuses_to_start(v: Vendors, tmp_path: Path) -> None:
    with psycopg.connect(v.direct_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS stripe_extra CASCADE")
        conn.execute("CREATE SCHEMA stripe_extra")
        conn.execute(
            "CREATE TABLE stripe_extra.customers_copy (id text PRIMARY KEY, email text, "
            "favourite_colour text)"
        )
    try:
        config = tmp_path / "writeproxy.toml"
        config.write_text(
            f"""
[connectors.stripe]
kind = "stripe"
base_url = "{v.stripe.base_url}"
token_env = "{STRIPE_KEY_ENV}"

[[synced_tables]]
table = "stripe_extra.customers_copy"
connector = "stripe"
object = "customer"
"""
        )
        env = {**os.environ, "WRITEPROXY_CONFIG": str(config), STRIPE_KEY_ENV: "sk_test_sandbox"}
        result = subprocess.run(
            [
                *(sys.executable, "-m", "proxy", "serve"),
                *("--listen", f"127.0.0.1:{free_port()}", "--upstream", v.direct_url),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=60,
        )
        output = result.stderr + result.stdout
        assert result.returncode != 0
        assert "stripe_extra.customers_copy" in output
        assert "favourite_colour is not a field of Stripe's customer object" in output
        assert "Traceback" not in output
        assert "sk_test_sandbox" not in output
    finally:
        with psycopg.connect(v.direct_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA stripe_extra CASCADE")


def test_rolled_back_metadata_update_is_undone_whatever_the_key_order(v: Vendors) -> None:
    """jsonb orders keys by length, Stripe by insertion: the undo compares by content."""
    ident = seed_customer(v, metadata={"zz": "0"})
    with psycopg.connect(v.url) as conn:
        conn.execute(
            "UPDATE stripe.customer SET metadata = %s WHERE id = %s",
            (Jsonb({"zz": "1", "a": "2"}), ident),
        )
        conn.rollback()
    v.settle()
    [obj] = customers(v)
    assert obj["metadata"] == {"zz": "0"}


def test_rolled_back_product_with_a_price_settles_archived(v: Vendors) -> None:
    """Stripe refuses to delete a product that has prices: the undo archives both."""
    with psycopg.connect(v.url) as conn:
        [product] = conn.execute(  # type: ignore[misc]
            "INSERT INTO stripe.product (name) VALUES ('Gold') RETURNING id"
        ).fetchone()
        conn.execute(
            "INSERT INTO stripe.price (product, currency, unit_amount) VALUES (%s, 'usd', 100)",
            (product,),
        )
        conn.rollback()
    v.settle()
    [held] = v.stripe.objects("products")
    assert (held["id"], held["active"]) == (product, False)
    assert [p["active"] for p in v.stripe.objects("prices")] == [False]


def test_delete_of_a_product_with_prices_archives_it(v: Vendors) -> None:
    product = seed_product(v)
    price = seed_price(v, product)
    with psycopg.connect(v.url, autocommit=True) as conn:
        assert conn.execute("DELETE FROM stripe.product WHERE id = %s", (product,)).rowcount == 1
    [held] = v.stripe.objects("products")
    assert held["active"] is False  # archived, as Stripe's dashboard does
    assert [p["id"] for p in v.stripe.objects("prices")] == [price]


# -- found by an adversarial review ------------------------------------------------------

KEY = {"Authorization": "Bearer sk_test_sandbox"}


def test_a_create_stripe_still_processes_is_waited_for_not_duplicated(v: Vendors) -> None:
    """The first attempt outlives the read timeout and runs on at Stripe: the retries
    under the same key hear 409 idempotency_key_in_use until Stripe replays it."""
    v.stripe.fault(match={"method": "POST", "path_regex": "^/v1/customers$"}, delay_ms=4000)
    with psycopg.connect(v.url, autocommit=True) as conn:
        [ident] = conn.execute(INSERT_CUSTOMER, ("slow@example.com", "Slow")).fetchone()  # type: ignore[misc]
    assert [o["id"] for o in customers(v)] == [ident]
    statuses = [r["status"] for r in writes(v)]
    assert 409 in statuses and statuses.count(200) <= 2  # the first, then the replay


def test_an_update_stripe_still_processes_is_waited_for(v: Vendors) -> None:
    ident = seed_customer(v, name="Ada")
    v.stripe.fault(match={"method": "POST", "path_regex": "^/v1/customers/"}, delay_ms=4000)
    with psycopg.connect(v.url, autocommit=True) as conn:
        conn.execute("UPDATE stripe.customer SET name = 'Grace' WHERE id = %s", (ident,))
    assert [o["name"] for o in customers(v)] == ["Grace"]


def test_metadata_keys_named_like_unix_time_fields_are_plain_text(v: Vendors) -> None:
    with psycopg.connect(v.url, autocommit=True) as conn:
        [meta] = conn.execute(  # type: ignore[misc]
            "INSERT INTO stripe.customer (email, metadata) VALUES ('m@example.com', %s) "
            "RETURNING metadata",
            (Jsonb({"created": "yesterday", "updated": "2024-01-01T00:00:00Z"}),),
        ).fetchone()
    assert meta == {"created": "yesterday", "updated": "2024-01-01T00:00:00Z"}


def test_an_impossible_redeem_by_is_a_check_violation(v: Vendors) -> None:
    with (
        psycopg.connect(v.url, autocommit=True) as conn,
        pytest.raises(pg_errors.CheckViolation) as caught,
    ):
        conn.execute(
            "INSERT INTO stripe.coupon (percent_off, duration, redeem_by) "
            "VALUES (10, 'once', 'infinity')"
        )
    assert caught.value.diag.column_name == "redeem_by"
    assert writes(v) == []


def test_a_lost_create_is_found_by_replay_whatever_else_stripe_holds(v: Vendors) -> None:
    """Another customer's metadata named like a time field, a percent Stripe rounds:
    neither stops the journal from finding and undoing what a lost create made."""
    v.stripe.http.post(
        "/v1/customers",
        data={"email": "other@example.com", "metadata[updated]": "last week"},
        headers=KEY,
    ).raise_for_status()
    outside = [o["id"] for o in customers(v)]
    v.stripe.fault(
        match={"method": "POST", "path_regex": "^/v1/(customers|coupons)$"},
        status=500,
        apply=True,
        times=20,
    )
    with psycopg.connect(v.url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute(INSERT_CUSTOMER, ("mine@example.com", "Mine"))
        with pytest.raises(psycopg.Error):
            conn.execute(
                "INSERT INTO stripe.coupon (percent_off, duration) "
                "VALUES (33.333333333333333333, 'once')"
            )
    v.stripe.http.delete("/_sandbox/faults").raise_for_status()
    v.settle()
    assert [o["id"] for o in customers(v)] == outside
    assert v.stripe.objects("coupons") == []
    v.stripe.http.delete(f"/v1/customers/{outside[0]}", headers=KEY).raise_for_status()


def test_an_id_that_is_a_dot_segment_names_no_object(v: Vendors) -> None:
    v.local("INSERT INTO stripe.customer (id, email) VALUES ('.', 'dot@example.com') RETURNING id")
    with psycopg.connect(v.url) as conn:
        with pytest.raises(pg_errors.NoDataFound):
            conn.execute("UPDATE stripe.customer SET name = 'x' WHERE id = '.'")
        conn.rollback()
    assert writes(v) == []
    v.local("DELETE FROM stripe.customer RETURNING id")
