"""proxy.writes.tables without a database: identifier quoting, table names from the
configuration, and how a synced table is built from its catalog columns."""

from __future__ import annotations

import pytest

from proxy.connectors.hubspot import naming
from proxy.connectors.mapping import MappingError, TableShape
from proxy.writes.settings import ConnectorSettings, SyncedTableSettings
from proxy.writes.tables import (
    Column,
    ConfigError,
    SyncedTable,
    SyncedTables,
    quote_ident,
    split_qualified,
)
from tests.unit.hubspot_tables import build_table as _build_table


def _association_ends(
    schema: str, name: str, columns: set[str]
) -> tuple[tuple[str, str], tuple[str, str]]:
    shape = TableShape(schema, name, tuple((c, "text") for c in sorted(columns)))
    return naming.association_ends(shape, frozenset(columns))


TS = "timestamp with time zone"


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("contact", "contact"),
        ("_sync_inserted_at", "_sync_inserted_at"),
        ("name", "name"),  # unreserved keyword: PostgreSQL leaves it bare
        ("type", "type"),
        ("Contact", '"Contact"'),
        ("a b", '"a b"'),
        ('we"ird', '"we""ird"'),
        ("", '""'),
        ("1abc", '"1abc"'),
        ("café", '"café"'),
        ("a$b", '"a$b"'),
        # Reserved, type/function-name and column-name keywords must be quoted.
        ("order", '"order"'),
        ("user", '"user"'),
        ("select", '"select"'),
        ("offset", '"offset"'),
        ("left", '"left"'),
        ("between", '"between"'),
    ],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hubspot.contact", ("hubspot", "contact")),
        ("HubSpot.Contact", ("hubspot", "contact")),  # folded like PostgreSQL
        ('"CRM"."Company"', ("CRM", "Company")),
        ('"a.b".c', ("a.b", "c")),
        (" hubspot . deal ", ("hubspot", "deal")),
    ],
)
def test_split_qualified(text: str, expected: tuple[str, str]) -> None:
    assert split_qualified(text) == expected


@pytest.mark.parametrize("text", ["contact", ".contact", "hubspot.", "a.b.c", ""])
def test_split_qualified_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match=r"must be written as schema\.table"):
        split_qualified(text)


def contact_columns() -> list[Column]:
    return [
        Column("id", "text"),
        Column("email", "text"),
        Column("first", "text"),
        Column("hs_object_id", "text"),
        Column("createdate", TS),
        Column("notes", "text"),
        Column("_sync_inserted_at", TS),
        Column("_updated_at", TS),
        Column("full", "text", generated=True),
    ]


def test_build_table_by_convention() -> None:
    table = _build_table(("hubspot", "contact"), contact_columns(), "hs", None, {"email": "k"})
    assert table == SyncedTable(
        schema="hubspot",
        name="contact",
        connector="hs",
        object_type="contacts",
        id_column="id",
        columns=tuple(contact_columns()),
        properties={"email": "email", "first": "first", "notes": "notes"},
        read_only=frozenset({"hs_object_id", "createdate"}),
        sync_columns=frozenset({"_sync_inserted_at", "_updated_at"}),
        upsert_keys=frozenset({"email"}),
        unique_constraints={"email": "k"},
    )
    assert table.writable_columns == (
        "id",
        "email",
        "first",
        "hs_object_id",
        "createdate",
        "notes",
        "_sync_inserted_at",
        "_updated_at",
    )
    assert table.qualified == "hubspot.contact"
    assert table.display == "hubspot.contact"


def test_build_table_with_explicit_settings() -> None:
    entry = SyncedTableSettings(
        table="crm.people",
        connector="hs",
        object="contacts",
        columns={"first": "firstname", "email": "email"},
        read_only=["notes"],
        local_columns=["email"],
        upsert_keys=[],
    )
    table = _build_table(("crm", "people"), contact_columns(), "hs", entry, {})
    assert table.object_type == "contacts"
    assert dict(table.properties) == {"first": "firstname"}
    assert table.read_only == {"notes", "hs_object_id", "createdate"}
    assert table.upsert_keys == frozenset()
    assert table.property_of("first") == "firstname"
    assert table.property_of("email") is None
    assert table.column_of("firstname") == "first"
    assert table.column_of("nope") is None
    # Read-only columns are filled from the vendor's answer under their own names.
    assert dict(table.vendor_columns) == {
        "first": "firstname",
        "notes": "notes",
        "hs_object_id": "hs_object_id",
        "createdate": "createdate",
    }


def test_upsert_keys_follow_renamed_columns() -> None:
    entry = SyncedTableSettings(
        table="crm.people", connector="hs", object="contacts", columns={"mail": "email"}
    )
    columns = [Column("id", "text"), Column("mail", "text")]
    table = _build_table(("crm", "people"), columns, "hs", entry, {})
    assert table.upsert_keys == {"mail"}


def test_other_objects_have_no_upsert_key_and_use_their_name() -> None:
    table = _build_table(("hubspot", "ticket"), [Column("id", "text")], "hs", None, {})
    assert table.object_type == "ticket"
    assert table.upsert_keys == frozenset()
    assert (
        _build_table(("hubspot", "company"), [Column("id", "text")], "hs", None, {}).object_type
        == "companies"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            SyncedTableSettings(table="h.c", connector="hs", id_column="hs_id"),
            "synced table h.c has no id column 'hs_id' (set id_column in its "
            "[[synced_tables]] entry)",
        ),
        (
            SyncedTableSettings(table="h.c", connector="hs", read_only=["ghost"]),
            "synced table h.c: read_only names unknown column 'ghost'",
        ),
        (
            SyncedTableSettings(table="h.c", connector="hs", local_columns=["ghost"]),
            "synced table h.c: local_columns names unknown column 'ghost'",
        ),
        (
            SyncedTableSettings(table="h.c", connector="hs", columns={"ghost": "x"}),
            "synced table h.c: columns renames unknown column 'ghost'",
        ),
    ],
)
def test_build_table_config_errors(entry: SyncedTableSettings, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _build_table(("h", "c"), contact_columns(), "hs", entry, {})
    assert str(caught.value) == message


def test_association_table() -> None:
    columns = [Column("contact_id", "text"), Column("deal_id", "text")]
    table = _build_table(("hubspot", "associations_contact_deal"), columns, "hs", None, {})
    assert table.association
    assert table.ends == (("contact_id", "contacts"), ("deal_id", "deals"))
    # No id column needed.
    assert table.id_column not in {c.name for c in columns}


def test_association_prefix_with_an_explicit_object_is_an_ordinary_table() -> None:
    entry = SyncedTableSettings(table="h.associations_x", connector="hs", object="things")
    table = _build_table(("h", "associations_x"), [Column("id", "text")], "hs", entry, {})
    assert not table.association
    assert table.ends is None


def test_association_ends_try_every_split() -> None:
    assert _association_ends("s", "associations_line_item_deal", {"line_item_id", "deal_id"}) == (
        ("line_item_id", "line_item"),
        ("deal_id", "deals"),
    )
    assert _association_ends("s", "associations_company_contact", {"company_id", "contact_id"}) == (
        ("company_id", "companies"),
        ("contact_id", "contacts"),
    )


def test_association_ends_missing_columns() -> None:
    with pytest.raises(MappingError, match="needs the columns <a>_id and <b>_id"):
        _association_ends("s", "associations_a_b", {"a_id"})
    with pytest.raises(MappingError):
        _association_ends("s", "associations_ab", {"ab_id"})


def test_synced_tables_lookup() -> None:
    table = _build_table(("hubspot", "contact"), contact_columns(), "hs", None, {})
    tables = SyncedTables(
        tables={("hubspot", "contact"): table},
        connectors={"hs": ConnectorSettings.model_validate({"kind": "hubspot", "token_env": "T"})},
        dependents={("public", "Contact View"): table},
    )
    assert tables
    assert not SyncedTables()
    assert tables.get("hubspot", "contact") is table
    assert tables.get("hubspot", "deal") is None
    assert tables.dependent("public", "Contact View") is table
    assert tables.dependent("hubspot", "contact") is None
    assert tables.qualified_names == ["hubspot.contact", 'public."Contact View"']
