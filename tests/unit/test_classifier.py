"""The statement classifier: which synced tables a SQL text may write or change."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.sql import classifier
from proxy.sql.classifier import (
    PARSE_ERROR,
    PASSTHROUGH,
    Action,
    Classification,
    SyncedTarget,
    WriteClassifier,
    parse_qualified_name,
)

LONG_NAME = "a" * 63
SYNCED = [
    "hubspot.contact",
    "hubspot.company",
    "salesforce.contact",
    '"Weird".Tbl',
    'odd."we""ird"',
    f"wide.{LONG_NAME}",
]


@pytest.fixture
def wc() -> WriteClassifier:
    return WriteClassifier(SYNCED)


def hs(action: Action, name: str = "contact") -> SyncedTarget:
    return SyncedTarget("hubspot", name, action)


def bare(action: Action, name: str = "contact") -> SyncedTarget:
    return SyncedTarget(None, name, action)


PASSTHROUGH_SQL = [
    "select * from hubspot.contact where id = $1",
    "SELECT * FROM hubspot.contact WHERE id = 1 FOR UPDATE",
    "select 'insert into hubspot.contact values (1)'",
    "select $$delete from hubspot.contact$$, $t$truncate hubspot.contact$t$",
    "select * from hubspot.contact where note = E'drop table hubspot.contact'",
    "-- insert into hubspot.contact values (1)\nselect 1",
    "/* outer /* delete from hubspot.contact */ still a comment */ select 1",
    "insert into public.log select * from hubspot.contact",
    "update public.users set n = c.n from hubspot.contact c where c.id = users.cid",
    "delete from public.users using hubspot.contact c where c.id = users.cid",
    "merge into public.users u using hubspot.contact c on u.cid = c.id when matched then delete",
    "create table t as select * from hubspot.contact",
    "select * into t from hubspot.contact",
    "create view v as select * from hubspot.contact",
    "set search_path to hubspot, public",
    "SET search_path = hubspot",
    "delete from public.contact",
    "update salesforce.company set name = 'x'",
    "insert into pg_temp.contact values (1)",
    'delete from hubspot."Contact"',
    'delete from "HubSpot".contact',
    'delete from "Contact"',
    "delete from weird.tbl",
    "delete from contact_archive",
    "copy hubspot.contact to stdout",
    "copy (select * from hubspot.contact) to stdout",
    "explain delete from hubspot.contact",
    "explain (analyze false) delete from hubspot.contact",
    "explain (analyze off, verbose) delete from hubspot.contact",
    "explain (analyze 0) delete from hubspot.contact",
    "comment on table hubspot.contact is 'synced'",
    "grant select on hubspot.contact to reporting",
    "create index on hubspot.contact (email)",
    "alter table public.users add foreign key (cid) references hubspot.contact (id)",
    "lock table hubspot.contact in share mode",
    "vacuum analyze hubspot.contact",
    "select 1 as \"InsertStmt\", 'DropStmt' from hubspot.contact",
    "select * into hubspot.contact from staging",  # creates a table, or fails
    # Limitation: a DO body is a string, so the write inside is invisible.
    "do $$ begin insert into hubspot.contact (email) values ('x'); end $$",
    "create table hubspot.deal (id int)",
    "drop table hubspot.deal",
    "drop schema marketing cascade",
]


@pytest.mark.parametrize("sql", PASSTHROUGH_SQL)
def test_passthrough(wc: WriteClassifier, sql: str) -> None:
    result = wc.classify(sql)
    assert result.targets == ()
    assert result.passthrough
    assert not result.parse_error


WRITES = [
    ("insert into hubspot.contact (email) values ($1) returning id", [hs("insert")]),
    ('INSERT INTO "hubspot"."contact" (email) VALUES ($1)', [hs("insert")]),
    ("INSERT INTO HubSpot.Contact (email) VALUES ($1)", [hs("insert")]),
    ('delete from "hubspot" . /* spaced */ contact', [hs("delete")]),
    ("delete from mydb.hubspot.contact", [hs("delete")]),
    ("delete from only hubspot.contact", [hs("delete")]),
    (
        "insert into hubspot.contact (email) values ($1) on conflict (email) "
        "do update set firstname = excluded.firstname",
        [hs("insert")],
    ),
    (
        "update hubspot.contact c set firstname = u.first from public.users u where u.id = c.uid",
        [hs("update")],
    ),
    (
        "delete from hubspot.contact c using public.users u where u.cid = c.id",
        [hs("delete")],
    ),
    (
        "merge into hubspot.contact t using (select 1 as id) s on t.id = s.id "
        "when matched then update set firstname = 'x' "
        "when not matched then insert (id) values (s.id)",
        [hs("merge")],
    ),
    # search_path decides what an unqualified name means: the caller asks Postgres.
    ("insert into contact (email) values ('a@b.c')", [bare("insert")]),
    ("UPDATE Contact SET firstname = 'x'", [bare("update")]),
    ("set search_path = hubspot; delete from contact", [bare("delete")]),
    ('insert into "Weird".tbl values (1)', [SyncedTarget("Weird", "tbl", "insert")]),
    ('insert into odd."we""ird" values (1)', [SyncedTarget("odd", 'we"ird', "insert")]),
    # Unicode-escape identifiers need not spell the name at all.
    ('delete from U&"\\0063ontact"', [bare("delete")]),
    ("delete from hubspot.U&\"!0063ontact\" UESCAPE '!'", [hs("delete")]),
    # Postgres truncates identifiers to 63 bytes.
    (f"delete from wide.{LONG_NAME}bcdefg", [SyncedTarget("wide", LONG_NAME, "delete")]),
    # Bytes of a non-UTF-8 client encoding, decoded with surrogateescape.
    ("insert into hubspot.contact (name) values ('M\udcfcller')", [hs("insert")]),
    (
        "with x as (insert into hubspot.contact (email) values ($1) returning *) select * from x",
        [hs("insert")],
    ),
    (
        "with a as (with b as (delete from hubspot.contact returning id) select id from b) "
        "select * from a",
        [hs("delete")],
    ),
    (
        "with d as (delete from hubspot.company returning id) "
        "insert into public.archive select id from d",
        [hs("delete", "company")],
    ),
    ("explain analyze delete from hubspot.contact", [hs("delete")]),
    ("explain (analyze, verbose) update contact set firstname = 'x'", [bare("update")]),
    ("explain (analyze true) delete from hubspot.contact", [hs("delete")]),
    ("explain (analyze 1) delete from hubspot.contact", [hs("delete")]),
    # The write happens at EXECUTE; reported here so the caller can map the name.
    ("prepare p (text) as insert into hubspot.contact (email) values ($1)", [hs("insert")]),
    ("truncate a, hubspot.contact", [hs("truncate")]),
    ("copy hubspot.contact (email) from stdin", [hs("copy_from")]),
    ("copy contact from '/tmp/x.csv' with (format csv)", [bare("copy_from")]),
    ("copy (delete from hubspot.contact returning *) to stdout", [hs("delete")]),
    ("alter table hubspot.contact add column score int", [hs("alter")]),
    ("alter table if exists only hubspot.contact drop column score", [hs("alter")]),
    ("alter table hubspot.contact rename to people", [hs("alter")]),
    ("alter table hubspot.contact rename column email to mail", [hs("alter")]),
    ("alter table hubspot.contact set schema archive", [hs("alter")]),
    ("alter table hubspot.contact disable trigger all", [hs("alter")]),
    ("alter table p attach partition hubspot.contact for values in (1)", [hs("alter")]),
    ("alter table p detach partition hubspot.contact", [hs("alter")]),
    ("alter table public.x inherit hubspot.contact", [hs("other_ddl")]),
    ("alter schema hubspot rename to h", [hs("alter", "company"), hs("alter")]),
    ("drop table hubspot.contact", [hs("drop")]),
    ("drop table if exists public.x, hubspot.contact cascade", [hs("drop")]),
    ("drop table contact", [bare("drop")]),
    ("drop foreign table hubspot.contact", [hs("drop")]),
    ("drop schema hubspot cascade", [hs("drop", "company"), hs("drop")]),
    ("drop schema salesforce", [SyncedTarget("salesforce", "contact", "drop")]),
    (
        "create trigger t before insert on hubspot.contact for each row execute function f()",
        [hs("other_ddl")],
    ),
    ("drop trigger t on hubspot.contact", [hs("other_ddl")]),
    ("drop rule r on contact", [bare("other_ddl")]),
    ("create policy p on hubspot.contact using (true)", [hs("other_ddl")]),
    ("alter policy p on hubspot.contact using (false)", [hs("other_ddl")]),
    ("create rule r as on update to hubspot.contact do instead nothing", [hs("other_ddl")]),
    (
        "create rule r as on insert to public.users do also "
        "insert into hubspot.contact (email) values (new.email)",
        [hs("other_ddl")],
    ),
    (
        "create function f() returns void language sql "
        "begin atomic delete from hubspot.contact; end",
        [hs("other_ddl")],
    ),
    ("create table c (a int) inherits (hubspot.contact)", [hs("other_ddl")]),
    ("create table c partition of hubspot.contact for values in (1)", [hs("other_ddl")]),
    (
        "create foreign table c partition of hubspot.contact for values in (1) server s",
        [hs("other_ddl")],
    ),
    (
        "create schema s create trigger t after insert on hubspot.contact execute function f()",
        [hs("other_ddl")],
    ),
]


@pytest.mark.parametrize(("sql", "targets"), WRITES)
def test_synced_targets(wc: WriteClassifier, sql: str, targets: list[SyncedTarget]) -> None:
    result = wc.classify(sql)
    assert result.targets == tuple(targets)
    assert not result.passthrough


def test_every_statement_is_reported_once_in_order(wc: WriteClassifier) -> None:
    result = wc.classify(
        "begin; insert into public.users values (1); "
        "insert into hubspot.contact (email) values ('a'); "
        "update hubspot.company set name = 'x'; "
        "insert into hubspot.contact (email) values ('b'); commit"
    )
    assert result == Classification(
        targets=(hs("insert"), hs("update", "company")), statement_count=6
    )


def test_statement_count(wc: WriteClassifier) -> None:
    assert wc.classify("select * from hubspot.contact; select 2;;").statement_count == 2
    assert wc.classify("-- only a comment about contact").statement_count == 0
    assert wc.classify("select 1; select 2") is PASSTHROUGH  # prefilter miss: not parsed
    assert PASSTHROUGH.statement_count == -1


def test_unparseable_text_passes_through(wc: WriteClassifier) -> None:
    assert wc.classify("insert into hubspot.contact valuez (1)") is PARSE_ERROR
    assert PARSE_ERROR.passthrough
    assert PARSE_ERROR.parse_error
    # Nothing names a synced table: not even parsed, so no parse error either.
    assert wc.classify("selec 1") is PASSTHROUGH


def test_prefilter_miss_never_parses(wc: WriteClassifier, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_parse(sql: str) -> str:
        raise AssertionError(f"parsed {sql!r}")

    monkeypatch.setattr(classifier, "parse_sql_json", must_not_parse)
    for sql in [
        "select * from public.users where id = $1",
        "insert into public.users (email) values ($1)",
        "EXECUTE p('x')",
        "",
    ]:
        assert wc.classify(sql) is PASSTHROUGH


def test_prefilter_hit_parses(wc: WriteClassifier, monkeypatch: pytest.MonkeyPatch) -> None:
    real_parse = classifier.parse_sql_json
    parsed: list[str] = []

    def spy(sql: str) -> str:
        parsed.append(sql)
        return real_parse(sql)

    monkeypatch.setattr(classifier, "parse_sql_json", spy)
    sql = "select * from HUBSPOT.Deal"  # the schema name alone is enough (DROP SCHEMA)
    assert wc.classify(sql).statement_count == 1
    assert wc.classify(sql).statement_count == 1
    assert parsed == [sql]  # the second call was a cache hit


def test_cache_returns_the_identical_object(wc: WriteClassifier) -> None:
    sql = "insert into hubspot.contact (email) values ($1)"
    first = wc.classify(sql)
    assert wc.classify("".join([sql])) is first  # equal text, different str object
    assert wc.classify("select * from hubspot.contact") is wc.classify(
        "select * from hubspot.contact"
    )


def test_cache_is_bounded() -> None:
    wc = WriteClassifier(SYNCED, cache_size=2)
    texts = [f"delete from hubspot.contact where id = {i}" for i in range(3)]
    first = [wc.classify(sql) for sql in texts]
    assert wc.classify(texts[2]) is first[2]
    assert wc.classify(texts[0]) is not first[0]  # evicted, classified again
    assert wc.classify(texts[0]) == first[0]


def test_long_texts_are_not_cached(wc: WriteClassifier) -> None:
    values = ", ".join(f"('user{i}@example.com')" for i in range(1000))
    sql = f"insert into hubspot.contact (email) values {values}"
    first = wc.classify(sql)
    assert first.targets == (hs("insert"),)
    assert wc.classify(sql) is not first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hubspot.contact", ("hubspot", "contact")),
        (" HubSpot . Contact ", ("hubspot", "contact")),
        ('"Weird".Tbl', ("Weird", "tbl")),
        ('"we""ird"."a.b"', ('we"ird', "a.b")),
        ("café.Größe", ("café", "größe")),  # like Postgres in UTF-8: ASCII folds only
    ],
)
def test_parse_qualified_name(text: str, expected: tuple[str, str]) -> None:
    assert parse_qualified_name(text) == expected


@pytest.mark.parametrize(
    "text", ["contact", "a.b.c", "", "hubspot.", '"".x', "1abc.x", f"hubspot.{LONG_NAME}b"]
)
def test_parse_qualified_name_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_qualified_name(text)


def test_classifier_rejects_unqualified_config() -> None:
    with pytest.raises(ValueError):
        WriteClassifier(["contact"])


MORE = [
    ("explain (analyze 'off') delete from hubspot.contact", []),
    ("explain (analyze FALSE) delete from hubspot.contact", []),
    ("explain (analyze 'on') delete from hubspot.contact", [hs("delete")]),
    ("create temp table x (like hubspot.contact)", []),
    ("drop index hubspot.contact", []),
    ("merge into public.t using hubspot.contact c on true when matched then delete", []),
    ("copy hubspot.contact from program 'gen'", [hs("copy_from")]),
    ("alter table hubspot.contact alter column email set not null", [hs("alter")]),
    ("alter table hubspot.contact set schema other", [hs("alter")]),
    ("drop policy p on hubspot.contact", [hs("other_ddl")]),
    (
        "alter table hubspot.company no inherit hubspot.contact",
        [hs("alter", "company"), hs("other_ddl")],
    ),
    (
        "create rule r as on insert to public.t do instead "
        "(update hubspot.contact set a = 1; delete from hubspot.company)",
        [hs("other_ddl"), hs("other_ddl", "company")],
    ),
    (
        "with x as (merge into hubspot.contact t using s on true when matched then delete "
        "returning *) select 1",
        [hs("merge")],
    ),
]


@pytest.mark.parametrize(("sql", "targets"), MORE)
def test_more_statement_forms(wc: WriteClassifier, sql: str, targets: list[SyncedTarget]) -> None:
    assert wc.classify(sql).targets == tuple(targets)


@settings(max_examples=200)
@given(st.text(alphabet=st.sampled_from("insertupdaloSELCT ();,'$*=1x\n\"")))
def test_texts_naming_no_synced_table_are_never_parsed(sql: str) -> None:
    wc = WriteClassifier(SYNCED)
    result = wc.classify(sql)
    needles = ("contact", "company", "hubspot", "salesforce", "weird", "tbl", "odd", "wide")
    if not any(needle in sql.casefold() for needle in needles) and 'u&"' not in sql.casefold():
        assert result is PASSTHROUGH


@settings(max_examples=100)
@given(st.text(max_size=60))
def test_classify_never_raises(sql: str) -> None:
    result = WriteClassifier(SYNCED).classify(sql)
    assert isinstance(result, Classification)
    assert result.passthrough == (not result.targets)


@pytest.mark.parametrize(
    ("sql", "changes"),
    [
        ("CREATE TABLE hubspot.company (id text)", True),
        ("create or replace view v as select 1", True),
        ("ALTER TABLE hubspot.contact RENAME TO people", True),
        ("DROP VIEW IF EXISTS v", True),
        ("CREATE RULE r AS ON INSERT TO v DO INSTEAD NOTHING", True),
        ("CREATE SCHEMA crm", True),
        ("create materialized view mv as select 1", True),
        ("SELECT 1; CREATE UNLOGGED TABLE t (a int)", True),
        ("SELECT 'create table' AS words", True),  # a harmless extra reload
        ("INSERT INTO hubspot.contact (email) VALUES ('a@b.c')", False),
        ("CREATE INDEX ON hubspot.contact (email)", False),
        ("SELECT created_at FROM users", False),
        ("CREATE TEMP TABLE t (a int)", False),
    ],
)
def test_catalog_ddl(sql: str, changes: bool) -> None:
    from proxy.frontend.relay import CATALOG_DDL

    assert bool(CATALOG_DDL.search(sql)) is changes
