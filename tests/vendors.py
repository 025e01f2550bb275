"""Helpers for Salesforce and Stripe synced-write tests: a clean slate per test and
the no-drift invariant (every local row equals the vendor's live object, property by
property, and the vendor has no live object the database does not)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg

from tests.support import ProxyProcess, VendorSandbox
from tests.synced import settle

#: table -> (sObject, {column: field}) compared for drift.
SALESFORCE = {
    "contact": (
        "Contact",
        {
            "first_name": "FirstName",
            "last_name": "LastName",
            "name": "Name",
            "email": "Email",
            "phone": "Phone",
            "title": "Title",
            "account_id": "AccountId",
            "birthdate": "Birthdate",
            "do_not_call": "DoNotCall",
            "user_id__c": "User_Id__c",
        },
    ),
    "account": (
        "Account",
        {
            "name": "Name",
            "number_of_employees": "NumberOfEmployees",
            "annual_revenue": "AnnualRevenue",
            "industry": "Industry",
            "website": "Website",
            "external_key__c": "External_Key__c",
        },
    ),
}
#: table -> (resource, columns of the same name) compared for drift.
STRIPE = {
    "customer": (
        "customers",
        ("email", "name", "phone", "description", "balance", "metadata", "address"),
    ),
    "product": ("products", ("name", "description", "active", "unit_label", "metadata")),
    "price": (
        "prices",
        ("product", "currency", "unit_amount", "nickname", "active", "lookup_key", "recurring"),
    ),
    "coupon": (
        "coupons",
        ("name", "percent_off", "amount_off", "currency", "duration", "metadata"),
    ),
}
TABLES = [f"salesforce.{t}" for t in SALESFORCE] + [f"stripe.{t}" for t in STRIPE]


@dataclass
class Vendors:
    proxy: ProxyProcess
    direct_url: str
    sf: VendorSandbox
    stripe: VendorSandbox

    @property
    def url(self) -> str:
        return self.proxy.url(db="synced")

    def local(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run ``sql`` directly, as a sync tool would (replica mode)."""
        with psycopg.connect(self.direct_url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            return conn.execute(sql, params).fetchall()

    def settle(self, timeout: float = 10.0) -> None:
        settle(self.direct_url, timeout)


def clean(direct_url: str, *sandboxes: VendorSandbox) -> None:
    for sandbox in sandboxes:
        sandbox.reset()
    with psycopg.connect(direct_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(f"TRUNCATE {', '.join(TABLES)}, public.users RESTART IDENTITY CASCADE")
        if conn.execute("SELECT to_regclass('writeproxy.journal')").fetchone() != (None,):
            conn.execute("TRUNCATE writeproxy.journal")


def norm(value: object) -> str | None:
    """One spelling per value: '' is no value (both vendors store it so), numbers by
    value, dates and instants in ISO form, JSON by content."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
        return str(number.normalize()) if number == number.to_integral() else str(number)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def assert_no_drift(direct_url: str, sf: VendorSandbox, stripe: VendorSandbox) -> None:
    settle(direct_url)
    with psycopg.connect(direct_url, autocommit=True) as conn:
        for table, (sobject, fields) in SALESFORCE.items():
            columns = list(fields)
            rows = conn.execute(f"SELECT id, {', '.join(columns)} FROM salesforce.{table}")
            local = {r[0]: {c: norm(v) for c, v in zip(columns, r[1:], strict=True)} for r in rows}
            remote = {
                str(o["Id"]): {c: norm(o.get(f)) for c, f in fields.items()}
                for o in sf.objects(sobject)
            }
            assert local == remote, f"drift in salesforce.{table}: local={local} vendor={remote}"
        for table, (resource, names) in STRIPE.items():
            rows = conn.execute(f"SELECT id, {', '.join(names)} FROM stripe.{table}")
            local = {r[0]: {c: norm(v) for c, v in zip(names, r[1:], strict=True)} for r in rows}
            remote = {
                str(o["id"]): {c: norm(o.get(c)) for c in names} for o in stripe.objects(resource)
            }
            if table in ("price", "product"):
                # Stripe cannot delete a price, nor a product prices use: one whose
                # creation was undone, or that was deleted, is archived (active=false).
                stray = {i: v for i, v in remote.items() if i not in local}
                assert all(v["active"] == "false" for v in stray.values()), stray
                remote = {i: v for i, v in remote.items() if i in local}
            assert local == remote, f"drift in stripe.{table}: local={local} vendor={remote}"


def vendors(
    proxy: ProxyProcess, direct_url: str, sf: VendorSandbox, stripe: VendorSandbox
) -> Iterator[Vendors]:
    clean(direct_url, sf, stripe)
    yield Vendors(proxy, direct_url, sf, stripe)
    assert_no_drift(direct_url, sf, stripe)
