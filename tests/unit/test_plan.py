"""The write planner (proxy.writes.plan): the exact statements it derives from a
client's INSERT/UPDATE/DELETE on a synced table, and every refusal, with synced tables
built in-process the way proxy.writes.tables builds them from the catalog."""

from __future__ import annotations

import pytest
from pglast import parse_sql

from proxy.writes.plan import (
    SOURCE,
    SOURCE_ROW,
    Conflict,
    Unsupported,
    WritePlan,
    assigned_error,
    plan_write,
)
from proxy.writes.settings import SyncedTableSettings
from proxy.writes.tables import Column, SyncedTable
from tests.unit.hubspot_tables import build_table as _build_table

TS = "timestamp with time zone"
CONTACT_COLUMNS = [
    Column("id", "text"),
    Column("email", "text"),
    Column("firstname", "text"),
    Column("user_id", "bigint"),
    Column("createdate", TS),
    Column("lastmodifieddate", TS),
    Column("_sync_inserted_at", TS),
    Column("_sync_updated_at", TS),
    Column("_updated_at", TS),
    Column("full_name", "text", generated=True),
]
WRITABLE = (
    "id, email, firstname, user_id, createdate, lastmodifieddate, "
    "_sync_inserted_at, _sync_updated_at, _updated_at"
)
POPULATE = "pg_catalog.jsonb_populate_recordset(NULL::hubspot.contact, $1::jsonb)"


#: The proxy's own statements name pg_catalog's functions and operators: a client's
#: overloads (public.to_jsonb, public.=) never run in them.
BY_IDS = (
    "OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text($1::jsonb)))"
)


def returned(ref: str) -> str:
    """The dry run's RETURNING list: the new image and whether the row is new."""
    return (
        f"RETURNING pg_catalog.to_jsonb({ref}), CAST({ref}.xmax AS text) OPERATOR(pg_catalog.=) '0'"
    )


def old_rows(ref: str, rest: str, with_: str = "", id_column: str = "id") -> str:
    """The old-images query: lock the rows once, one JSON array, their ids set aside."""
    return (
        f"WITH {with_}writeproxy_old AS MATERIALIZED (SELECT pg_catalog.to_jsonb({ref}) AS image "
        f"FROM {rest} FOR UPDATE OF {ref}) SELECT (SELECT pg_catalog.jsonb_agg(image) "
        "FROM writeproxy_old), pg_catalog.set_config('writeproxy.ids', COALESCE((SELECT "
        f"pg_catalog.jsonb_agg(image OPERATOR(pg_catalog.->) '{id_column}') FROM writeproxy_old), "
        "'[]')::text, true)"
    )


def locked(ref: str) -> str:
    """The UPDATE dry run's condition: exactly the locked rows."""
    return (
        f"CAST({ref}.id AS text) OPERATOR(pg_catalog.=) ANY(ARRAY(SELECT "
        "pg_catalog.jsonb_array_elements_text("
        "CAST(pg_catalog.current_setting('writeproxy.ids') AS jsonb))))"
    )


UPSERT_ON_ID = (
    " ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, firstname = EXCLUDED.firstname, "
    "user_id = EXCLUDED.user_id, createdate = EXCLUDED.createdate, "
    "lastmodifieddate = EXCLUDED.lastmodifieddate, "
    "_sync_updated_at = EXCLUDED._sync_updated_at, _updated_at = EXCLUDED._updated_at"
)


def contact_table() -> SyncedTable:
    return _build_table(
        ("hubspot", "contact"), CONTACT_COLUMNS, "hubspot", None, {"email": "contact_email_key"}
    )


def company_table() -> SyncedTable:
    """No vendor upsert key; no read-only or sync columns; a custom id column."""
    return _build_table(
        ("crm", "Company"),
        [Column("hs_id", "text"), Column("name", "text")],
        "hubspot",
        SyncedTableSettings(
            table='crm."Company"', connector="hubspot", id_column="hs_id", object="companies"
        ),
        {},
    )


def association_table() -> SyncedTable:
    return _build_table(
        ("hubspot", "associations_contact_deal"),
        [Column("contact_id", "text"), Column("deal_id", "text"), Column("_sync_inserted_at", TS)],
        "hubspot",
        None,
        {},
    )


@pytest.fixture
def contact() -> SyncedTable:
    return contact_table()


def refusal(sql: str, table: SyncedTable) -> Unsupported:
    with pytest.raises(Unsupported) as caught:
        plan_write(sql, table)
    return caught.value


def test_the_contact_table_is_built_as_expected(contact: SyncedTable) -> None:
    assert contact.object_type == "contacts"
    assert contact.read_only == {"createdate", "lastmodifieddate"}
    assert contact.sync_columns == {"_sync_inserted_at", "_sync_updated_at", "_updated_at"}
    assert dict(contact.properties) == {
        "email": "email",
        "firstname": "firstname",
        "user_id": "user_id",
    }
    assert contact.upsert_keys == {"email"}
    assert ", ".join(contact.writable_columns) == WRITABLE


# --- INSERT -----------------------------------------------------------------------


def test_insert_with_parameters_and_returning(contact: SyncedTable) -> None:
    plan = plan_write(
        "insert into hubspot.contact (email, firstname) values ($1, upper($2)) returning id, email",
        contact,
    )
    assert plan == WritePlan(
        kind="insert",
        table=contact,
        select_old=None,
        dry_run="INSERT INTO hubspot.contact (email, firstname) VALUES ($1, upper($2)) "
        + returned("contact"),
        apply=f"INSERT INTO hubspot.contact ({WRITABLE}) SELECT {WRITABLE} FROM {POPULATE} "
        "RETURNING id, email",
        set_columns=frozenset(),
        conflict=None,
        insert_columns=("email", "firstname"),
    )


def test_insert_without_column_list_or_returning(contact: SyncedTable) -> None:
    plan = plan_write("INSERT INTO hubspot.contact DEFAULT VALUES", contact)
    assert plan.insert_columns is None
    assert plan.dry_run == "INSERT INTO hubspot.contact DEFAULT VALUES " + returned("contact")
    assert (
        plan.apply == f"INSERT INTO hubspot.contact ({WRITABLE}) SELECT {WRITABLE} FROM {POPULATE}"
    )


def test_insert_multi_row_select_and_alias(contact: SyncedTable) -> None:
    plan = plan_write(
        "insert into hubspot.contact as c (email) select u.email from public.users u "
        "returning c.id, *",
        contact,
    )
    assert plan.dry_run == (
        "INSERT INTO hubspot.contact AS c (email) SELECT u.email FROM public.users AS u "
        + returned("c")
    )
    assert plan.apply.startswith(f"INSERT INTO hubspot.contact AS c ({WRITABLE}) SELECT")
    assert plan.apply.endswith(" RETURNING c.id, *")


def test_insert_may_name_api_columns_the_executor_checks_their_values(
    contact: SyncedTable,
) -> None:
    plan = plan_write(
        "insert into hubspot.contact (id, email, createdate) values (null, 'a', default)",
        contact,
    )
    assert plan.insert_columns == ("id", "email", "createdate")
    assert plan.dry_run == (
        "INSERT INTO hubspot.contact (id, email, createdate) VALUES (NULL, 'a', DEFAULT) "
        + returned("contact")
    )


def test_insert_with_a_cte_keeps_it_in_the_dry_run(contact: SyncedTable) -> None:
    plan = plan_write(
        "with v(e) as (values ('a@b.c')) insert into hubspot.contact (email) select e from v",
        contact,
    )
    assert plan.dry_run == (
        "WITH v(e) AS (VALUES ('a@b.c')) INSERT INTO hubspot.contact (email) SELECT e FROM v "
        + returned("contact")
    )


def test_insert_into_a_quoted_table_runs_on_the_real_table() -> None:
    company = company_table()
    plan = plan_write("insert into crm.\"Company\" (name) values ('Acme')", company)
    assert plan.dry_run == (
        "INSERT INTO crm.\"Company\" (name) VALUES ('Acme') " + returned('"Company"')
    )


# --- INSERT ... ON CONFLICT -------------------------------------------------------


def test_on_conflict_do_nothing_on_the_upsert_key(contact: SyncedTable) -> None:
    plan = plan_write(
        "insert into hubspot.contact (email) values ($1) on conflict (email) do nothing",
        contact,
    )
    assert plan.conflict == Conflict("email", "nothing")
    # The dry run keeps the clause: PostgreSQL skips the rows it has already.
    assert plan.dry_run == (
        "INSERT INTO hubspot.contact (email) VALUES ($1) ON CONFLICT (email) DO NOTHING "
        + returned("contact")
    )
    assert plan.apply == (
        f"INSERT INTO hubspot.contact ({WRITABLE}) SELECT {WRITABLE} FROM {POPULATE}" + UPSERT_ON_ID
    )


def test_on_conflict_do_nothing_without_target_means_the_upsert_key(
    contact: SyncedTable,
) -> None:
    plan = plan_write(
        "insert into hubspot.contact (email) values ('a') on conflict do nothing", contact
    )
    assert plan.conflict == Conflict("email", "nothing")


def test_on_conflict_do_update(contact: SyncedTable) -> None:
    plan = plan_write(
        "INSERT INTO hubspot.contact AS c (email) VALUES ('a') ON CONFLICT (email) "
        "DO UPDATE SET firstname = excluded.firstname WHERE c.user_id IS NULL RETURNING *",
        contact,
    )
    assert plan.kind == "insert"
    assert plan.dry_run == (
        "INSERT INTO hubspot.contact AS c (email) VALUES ('a') ON CONFLICT (email) "
        "DO UPDATE SET firstname = excluded.firstname WHERE c.user_id IS NULL " + returned("c")
    )
    assert plan.apply == (
        f"INSERT INTO hubspot.contact AS c ({WRITABLE}) SELECT {WRITABLE} FROM {POPULATE}"
        + UPSERT_ON_ID
        + " RETURNING *"
    )
    assert plan.conflict == Conflict(
        key_column="email",
        action="update",
        lock_existing="SELECT pg_catalog.to_jsonb(t) FROM hubspot.contact AS t WHERE t.id::text "
        f"{BY_IDS} FOR UPDATE OF t",
    )


def test_on_conflict_do_update_keeps_schema_qualified_references(
    contact: SyncedTable,
) -> None:
    plan = plan_write(
        "INSERT INTO hubspot.contact (email) VALUES ('a') ON CONFLICT (email) "
        "DO UPDATE SET firstname = hubspot.contact.firstname || 'x'",
        contact,
    )
    assert plan.dry_run == (
        "INSERT INTO hubspot.contact (email) VALUES ('a') ON CONFLICT (email) "
        "DO UPDATE SET firstname = hubspot.contact.firstname || 'x' " + returned("contact")
    )


def test_on_conflict_on_constraint_names_the_upsert_keys_unique_constraint(
    contact: SyncedTable,
) -> None:
    nothing = plan_write(
        "insert into hubspot.contact (email) values ('a') "
        "on conflict on constraint contact_email_key do nothing",
        contact,
    )
    assert nothing.conflict == Conflict("email", "nothing")
    update = plan_write(
        "insert into hubspot.contact (email) values ('a') "
        "on conflict on constraint contact_email_key do update set firstname = 'x'",
        contact,
    )
    assert update.conflict is not None
    assert update.conflict.key_column == "email"
    # The dry run runs on the real table, whose constraint it names.
    assert update.dry_run == (
        "INSERT INTO hubspot.contact (email) VALUES ('a') ON CONFLICT ON CONSTRAINT "
        "contact_email_key DO UPDATE SET firstname = 'x' " + returned("contact")
    )


@pytest.mark.parametrize(
    "clause",
    [
        "on conflict (firstname) do nothing",
        "on conflict (email, firstname) do nothing",
        "on conflict (id) do update set firstname = 'x'",
        "on conflict do update set firstname = 'x'",
        "on conflict on constraint contact_pkey do nothing",
        "on conflict on constraint contact_pkey do update set firstname = 'x'",
    ],
)
def test_on_conflict_must_name_the_one_upsert_key(contact: SyncedTable, clause: str) -> None:
    error = refusal(f"insert into hubspot.contact (email) values ('a') {clause}", contact)
    assert str(error) == (
        "ON CONFLICT on the synced table hubspot.contact must name one column the vendor "
        "can upsert by (allowed: email)"
    )
    assert error.hint == "Use ON CONFLICT (email) for HubSpot contacts."


def test_on_conflict_on_a_table_without_upsert_keys() -> None:
    error = refusal(
        "insert into crm.\"Company\" (name) values ('a') on conflict do nothing", company_table()
    )
    assert "(allowed: none)" in str(error)
    assert "crm.Company" in str(error)


@pytest.mark.parametrize(("column", "is_id"), [("id", True), ("createdate", False)])
def test_on_conflict_do_update_may_not_assign_api_columns(
    contact: SyncedTable, column: str, is_id: bool
) -> None:
    error = refusal(
        "insert into hubspot.contact (email) values ('a') on conflict (email) "
        f"do update set {column} = excluded.{column}",
        contact,
    )
    assert str(error) == str(assigned_error(contact, column))
    assert ("the id column" in str(error)) is is_id


# --- UPDATE -----------------------------------------------------------------------


#: The columns the API and the proxy fill, which every UPDATE's apply writes.
FILLED = ("createdate", "lastmodifieddate", "_sync_inserted_at", "_sync_updated_at", "_updated_at")
#: The dry run assigns them their own values (so that their privileges are checked).
KEEP_FILLED = ", ".join(f"{c} = {c}" for c in FILLED)


def apply_update(ref: str, alias: str = "", returning: str = "", assigned: str = "") -> str:
    """The apply writes only the client's columns (``assigned``) and the filled ones."""
    source = f"({SOURCE}.{SOURCE_ROW})"
    columns = [c for c in WRITABLE.split(", ") if c in assigned.split(", ") or c in FILLED]
    assignments = ", ".join(f"{c} = {source}.{c}" for c in columns)
    return (
        f"UPDATE hubspot.contact{alias} SET {assignments} FROM (SELECT {SOURCE_ROW} FROM "
        f"{POPULATE} AS {SOURCE_ROW}) AS {SOURCE} WHERE {ref}.id OPERATOR(pg_catalog.=) "
        f"{source}.id{returning}"
    )


def test_update_with_where_and_returning_star(contact: SyncedTable) -> None:
    plan = plan_write(
        "update hubspot.contact set firstname = $1 where email like '%@a' returning *", contact
    )
    assert plan == WritePlan(
        kind="update",
        table=contact,
        select_old=old_rows("contact", "hubspot.contact WHERE email LIKE '%@a'"),
        # The WHERE was evaluated once, when locking: the dry run takes the locked rows.
        dry_run=f"UPDATE hubspot.contact SET firstname = $1, {KEEP_FILLED} "
        f"WHERE {locked('contact')} " + returned("contact"),
        apply=apply_update("contact", returning=" RETURNING contact.*", assigned="firstname"),
        set_columns=frozenset({"firstname"}),
    )


def test_update_without_where_or_returning(contact: SyncedTable) -> None:
    plan = plan_write("UPDATE hubspot.contact SET firstname = 'x', user_id = 2", contact)
    assert plan.select_old == old_rows("contact", "hubspot.contact")
    assert plan.set_columns == {"firstname", "user_id"}
    assert plan.apply == apply_update("contact", assigned="firstname, user_id")


def test_update_from_with_alias(contact: SyncedTable) -> None:
    plan = plan_write(
        "update hubspot.contact c set firstname = u.name from public.users u "
        "where u.cid = c.id returning c.*, c.email",
        contact,
    )
    assert plan.select_old == old_rows(
        "c", "hubspot.contact AS c, public.users AS u WHERE u.cid = c.id"
    )
    # With FROM the join stays (the SET expressions read it); the executor checks that
    # it finds exactly the locked rows.
    assert plan.rejoins
    assert plan.dry_run == (
        f"UPDATE hubspot.contact AS c SET firstname = u.name, {KEEP_FILLED} "
        f"FROM public.users AS u WHERE u.cid = c.id AND {locked('c')} " + returned("c")
    )
    assert plan.apply == apply_update("c", " AS c", " RETURNING c.*, c.email", "firstname")


def test_update_with_cte_reads_old_rows_with_it(contact: SyncedTable) -> None:
    plan = plan_write(
        "with x as (select 1 as n) update hubspot.contact set user_id = x.n from x", contact
    )
    assert plan.select_old == old_rows("contact", "hubspot.contact, x", "x AS (SELECT 1 AS n), ")


@pytest.mark.parametrize(
    ("assignment", "column"),
    [
        ("id = '5'", "id"),
        ("createdate = now()", "createdate"),
        ("lastmodifieddate = now(), id = '1'", "createdate"),
        ("(firstname, lastmodifieddate) = ('a', now())", "lastmodifieddate"),
    ],
)
def test_update_may_not_assign_api_columns(
    contact: SyncedTable, assignment: str, column: str
) -> None:
    error = refusal(f"update hubspot.contact set {assignment}", contact)
    expected = assigned_error(contact, "id" if "id =" in assignment else column)
    assert str(error) == str(expected)
    assert error.hint == expected.hint


def test_assigned_error_messages(contact: SyncedTable) -> None:
    id_error = assigned_error(contact, "id")
    assert str(id_error) == (
        'the id column "id" of the synced table hubspot.contact is assigned by the API '
        "and cannot be written"
    )
    assert id_error.hint == "Omit the id column; RETURNING id gives the id the API assigned."
    ro_error = assigned_error(contact, "createdate")
    assert str(ro_error) == (
        "column 'createdate' of the synced table hubspot.contact is set by the API "
        "and cannot be written"
    )
    assert ro_error.hint == "Omit the column; RETURNING shows the value the API assigned."


def test_update_from_returning_star_is_refused(contact: SyncedTable) -> None:
    error = refusal(
        "update hubspot.contact c set firstname = u.n from public.users u "
        "where u.id = c.user_id returning *",
        contact,
    )
    assert str(error) == "RETURNING * of an UPDATE ... FROM on a synced table is not supported"
    assert error.hint == "List the synced table's columns, e.g. RETURNING t.*."


@pytest.mark.parametrize(
    "sql",
    [
        "update hubspot.contact c set firstname = u.n from public.users u "
        "where u.id = c.user_id returning u.n",
        "delete from hubspot.contact c using public.users u where u.id = c.user_id "
        "returning c.id, u.email",
    ],
)
def test_returning_another_tables_columns_is_refused(contact: SyncedTable, sql: str) -> None:
    error = refusal(sql, contact)
    assert str(error) == "RETURNING may only reference the synced table itself"
    assert error.hint == "Select the other table's columns in a separate statement."


@pytest.mark.parametrize(
    "sql",
    [
        "update hubspot.contact set firstname = 'x' where current of cur",
        "delete from hubspot.contact where current of cur",
    ],
)
def test_where_current_of_is_refused(contact: SyncedTable, sql: str) -> None:
    error = refusal(sql, contact)
    assert str(error) == "WHERE CURRENT OF is not supported on synced tables"
    assert error.hint is None


# --- DELETE -----------------------------------------------------------------------


def test_delete_by_parameter_with_returning(contact: SyncedTable) -> None:
    plan = plan_write("delete from hubspot.contact where id = $1 returning email", contact)
    assert plan == WritePlan(
        kind="delete",
        table=contact,
        select_old=old_rows("contact", "hubspot.contact WHERE id = $1"),
        dry_run=None,
        apply=f"DELETE FROM hubspot.contact WHERE contact.id::text {BY_IDS} RETURNING email",
        set_columns=frozenset(),
    )


def test_delete_using_with_alias_and_cte(contact: SyncedTable) -> None:
    plan = plan_write(
        "with u as (select 1 as id) delete from hubspot.contact c using u "
        "where c.user_id = u.id returning c.email",
        contact,
    )
    assert plan.select_old == old_rows(
        "c", "hubspot.contact AS c, u WHERE c.user_id = u.id", "u AS (SELECT 1 AS id), "
    )
    assert plan.apply == (
        f"DELETE FROM hubspot.contact AS c WHERE c.id::text {BY_IDS} RETURNING c.email"
    )


def test_delete_with_a_custom_id_column_and_quoted_name() -> None:
    plan = plan_write('delete from crm."Company"', company_table())
    assert plan.select_old == old_rows('"Company"', 'crm."Company"', id_column="hs_id")
    assert plan.apply == (f'DELETE FROM crm."Company" WHERE "Company".hs_id::text {BY_IDS}')


# --- association tables -----------------------------------------------------------


def test_association_insert_and_delete() -> None:
    table = association_table()
    assert table.ends == (("contact_id", "contacts"), ("deal_id", "deals"))
    insert = plan_write(
        "insert into hubspot.associations_contact_deal (contact_id, deal_id) "
        "values ($1, $2) returning *",
        table,
    )
    assert insert.dry_run == (
        "INSERT INTO hubspot.associations_contact_deal (contact_id, deal_id) VALUES ($1, $2) "
        + returned("associations_contact_deal")
    )
    delete = plan_write(
        "delete from hubspot.associations_contact_deal a where a.contact_id = $1", table
    )
    assert delete.apply == (
        "DELETE FROM hubspot.associations_contact_deal AS a "
        "WHERE (a.contact_id::text, a.deal_id::text) IN "
        "(SELECT p OPERATOR(pg_catalog.->>) 0, p OPERATOR(pg_catalog.->>) 1 "
        "FROM pg_catalog.jsonb_array_elements($1::jsonb) AS p)"
    )


def test_association_update_is_refused() -> None:
    error = refusal(
        "update hubspot.associations_contact_deal set deal_id = '1'", association_table()
    )
    assert str(error) == (
        "UPDATE of the association table hubspot.associations_contact_deal is not supported"
    )
    assert error.hint == "Delete the association row and insert the new one."


def test_association_on_conflict_is_refused() -> None:
    error = refusal(
        "insert into hubspot.associations_contact_deal values ('1', '2') on conflict do nothing",
        association_table(),
    )
    assert str(error) == (
        "ON CONFLICT on the association table hubspot.associations_contact_deal is not supported"
    )
    assert error.hint == "Insert only associations that do not exist yet."


# --- statements that are not one plain INSERT/UPDATE/DELETE -----------------------


REFUSALS = [
    (
        "select 1; delete from hubspot.contact",
        "a write to a synced table must be the only statement in its query string",
        "Send each statement separately.",
    ),
    (
        "delete from hubspot.contact; delete from hubspot.contact",
        "a write to a synced table must be the only statement in its query string",
        "Send each statement separately.",
    ),
    (
        "with d as (delete from hubspot.contact returning id) select * from d",
        "data-modifying WITH queries on the synced table hubspot.contact are not supported",
        "Write to the synced table in its own INSERT, UPDATE or DELETE statement.",
    ),
    (
        "with d as (delete from public.x returning id) update hubspot.contact set firstname = 'a'",
        "data-modifying WITH queries on the synced table hubspot.contact are not supported",
        "Write to the synced table in its own INSERT, UPDATE or DELETE statement.",
    ),
    (
        "with i as (insert into hubspot.contact (email) values ('a') returning id) "
        "insert into public.log select id from i",
        "data-modifying WITH queries on the synced table hubspot.contact are not supported",
        "Write to the synced table in its own INSERT, UPDATE or DELETE statement.",
    ),
    (
        "prepare p as delete from hubspot.contact",
        "PREPARE of a write to the synced table hubspot.contact is not supported",
        "Use your driver's prepared statements (the extended protocol) instead.",
    ),
    (
        "explain analyze delete from hubspot.contact",
        "EXPLAIN of a write to the synced table hubspot.contact is not supported",
        "EXPLAIN ANALYZE would perform the write; explain it against the database directly.",
    ),
    (
        "truncate hubspot.contact",
        "TRUNCATE of the synced table hubspot.contact is not supported",
        "Delete rows with DELETE so that the vendor API archives them too.",
    ),
    (
        "copy hubspot.contact (email) from stdin",
        "COPY FROM into the synced table hubspot.contact is not supported",
        "Use INSERT statements; multi-row INSERTs are sent to the vendor in batches.",
    ),
    (
        "copy (insert into hubspot.contact (email) values ('a') returning id) to stdout",
        "COPY of a statement that writes the synced table hubspot.contact is not supported",
        "Run the INSERT, UPDATE or DELETE on its own; COPY only what it returns.",
    ),
    (
        "merge into hubspot.contact t using public.s on t.id = s.id when matched then delete",
        "MERGE into the synced table hubspot.contact is not supported",
        "Use INSERT ... ON CONFLICT, UPDATE or DELETE.",
    ),
    (
        "alter table hubspot.contact add column x int",
        "AlterTable on the synced table hubspot.contact is not supported through the proxy",
        "Change the schema of synced tables directly on the upstream database.",
    ),
    (
        "drop table hubspot.contact",
        "Drop on the synced table hubspot.contact is not supported through the proxy",
        "Change the schema of synced tables directly on the upstream database.",
    ),
]


@pytest.mark.parametrize(("sql", "message", "hint"), REFUSALS)
def test_refusals(contact: SyncedTable, sql: str, message: str, hint: str) -> None:
    error = refusal(sql, contact)
    assert str(error) == message
    assert error.hint == hint


def test_unsupported_carries_an_optional_hint() -> None:
    assert Unsupported("x").hint is None
    assert Unsupported("x", "y").hint == "y"
    assert isinstance(Unsupported("x"), Exception)


def test_plans_do_not_share_state_between_calls(contact: SyncedTable) -> None:
    sql = "update hubspot.contact set firstname = 'x' returning *"
    assert plan_write(sql, contact) == plan_write(sql, contact)


# --- every generated statement is valid SQL ---------------------------------------


def keyword_table() -> SyncedTable:
    """Columns and a table named like SQL keywords, which must be quoted to be names."""
    return _build_table(
        ("hubspot", "order"),
        [
            Column("id", "text"),
            Column("user", "text"),
            Column("order", "integer"),
            Column("default", "text"),
            Column("createdate", TS),
            Column("_sync_inserted_at", TS),
        ],
        "hubspot",
        SyncedTableSettings(table='hubspot."order"', connector="hubspot", upsert_keys=["user"]),
        {},
    )


def generated_sql(plan: WritePlan) -> list[str]:
    statements = [plan.apply]
    statements += [s for s in (plan.select_old, plan.dry_run) if s is not None]
    if plan.conflict is not None and plan.conflict.lock_existing:
        statements.append(plan.conflict.lock_existing)
    return statements


@pytest.mark.parametrize(
    "sql",
    [
        'insert into hubspot."order" ("user", "order") values ($1, 2) returning *',
        'insert into hubspot."order" ("user") values ($1) on conflict ("user") '
        'do update set "order" = excluded."order" returning "default"',
        'insert into hubspot."order" ("user") values ($1) on conflict do nothing',
        'update hubspot."order" set "default" = $1 where "order" > 2 returning "user"',
        'update hubspot."order" o set "user" = u.email from public.users u '
        'where u.id = o."order" returning o.*',
        'delete from hubspot."order" where "user" = $1 returning *',
    ],
)
def test_generated_statements_parse_with_keyword_names(sql: str) -> None:
    table = keyword_table()
    plan = plan_write(sql, table)
    statements = generated_sql(plan)
    assert len(statements) >= 2
    for statement in statements:
        parse_sql(statement)  # raises ParseError on invalid SQL
    assert plan.apply.startswith(
        ('INSERT INTO hubspot."order"', 'UPDATE hubspot."order"', 'DELETE FROM hubspot."order"')
    )
