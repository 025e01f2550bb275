"""Write exactness (issue 9): PostgreSQL decides first — everything it would check is
checked for the client's own role before any API call; the rows sent to the API are
exactly the rows changed locally (the row set is locked once); and nothing changes a
synced table behind the write path (the guard trigger). Every test ends with the
no-drift invariant (the ``hs`` fixture)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from tests.conftest import synced_config
from tests.support import ProxyProcess, Sandbox, run_proxy
from tests.synced import Harness, harness

ROLE = "wp_app"
#: HubSpot's archive of one contact (``DELETE /crm/v3/objects/contacts/{id}``).
ARCHIVE_PATH = r"/crm/v3/objects/contacts/[^/]+$"


@pytest.fixture
def hs(synced_proxy: ProxyProcess, synced_url: str, sandbox: Sandbox) -> Iterator[Harness]:
    yield from harness(synced_proxy, synced_url, sandbox)


def admin(hs: Harness, *statements: str) -> None:
    """DDL and grants, directly (not through the proxy)."""
    with psycopg.connect(hs.direct_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


@pytest.fixture
def role(hs: Harness) -> Iterator[str]:
    """A login role with no privileges yet on the synced tables."""
    admin(
        hs,
        f"DROP ROLE IF EXISTS {ROLE}",
        f"CREATE ROLE {ROLE} LOGIN",
        f"GRANT USAGE ON SCHEMA hubspot TO {ROLE}",
        f"GRANT SELECT ON hubspot.contact TO {ROLE}",
    )
    yield ROLE
    admin(hs, f"DROP OWNED BY {ROLE}", f"DROP ROLE {ROLE}")


def seed(hs: Harness, *emails: str) -> list[str]:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        return [
            str(
                conn.execute(  # type: ignore[index]
                    "INSERT INTO hubspot.contact (email) VALUES (%s) RETURNING id", (email,)
                ).fetchone()[0]
            )
            for email in emails
        ]


def no_vendor_calls(hs: Harness) -> None:
    assert hs.sandbox.vendor_requests() == []


def forget_requests(hs: Harness) -> None:
    hs.sandbox.http.delete("/_sandbox/requests").raise_for_status()


def as_role(hs: Harness, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(hs.proxy.url(user=ROLE, db="synced"), autocommit=autocommit)


# -- 0. PostgreSQL checks first, for the client's role --------------------------------


def test_insert_without_the_privilege_never_reaches_the_vendor(hs: Harness, role: str) -> None:
    with as_role(hs) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('ro@example.com')")
    no_vendor_calls(hs)
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]


@pytest.mark.parametrize("in_block", [False, True])
def test_delete_without_the_privilege_archives_nothing(
    hs: Harness, role: str, in_block: bool
) -> None:
    [ident] = seed(hs, "keep@example.com")
    admin(hs, f"GRANT UPDATE ON hubspot.contact TO {role}")
    forget_requests(hs)
    with as_role(hs, autocommit=not in_block) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("DELETE FROM hubspot.contact WHERE email = 'keep@example.com'")
        if in_block:
            conn.rollback()
    no_vendor_calls(hs)
    assert [str(o["id"]) for o in hs.sandbox.objects()] == [ident]


def test_update_of_a_column_without_the_privilege_is_refused_first(hs: Harness, role: str) -> None:
    """Column privileges: the role may update firstname, and the columns the API and the
    proxy fill (README: privileges); company is refused before any API call."""
    seed(hs, "col@example.com")
    filled = "createdate, lastmodifieddate, _sync_inserted_at, _sync_updated_at, _updated_at"
    admin(hs, f"GRANT UPDATE (firstname, {filled}) ON hubspot.contact TO {role}")
    forget_requests(hs)
    with as_role(hs) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("UPDATE hubspot.contact SET company = 'Nope'")
        no_vendor_calls(hs)
        conn.execute("UPDATE hubspot.contact SET firstname = 'Allowed'")
    assert hs.local("SELECT firstname FROM hubspot.contact") == [("Allowed",)]


def test_row_level_security_is_checked_before_the_api(hs: Harness, role: str) -> None:
    admin(
        hs,
        f"GRANT INSERT, UPDATE ON hubspot.contact TO {role}",
        "ALTER TABLE hubspot.contact ENABLE ROW LEVEL SECURITY",
        f"CREATE POLICY wp_read ON hubspot.contact FOR SELECT TO {role} USING (true)",
        f"CREATE POLICY wp_acme ON hubspot.contact FOR INSERT TO {role} "
        "WITH CHECK (company = 'Acme')",
        f"CREATE POLICY wp_upd ON hubspot.contact FOR UPDATE TO {role} "
        "USING (company = 'Acme') WITH CHECK (company = 'Acme')",
    )
    try:
        with as_role(hs) as conn:
            with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
                conn.execute(
                    "INSERT INTO hubspot.contact (email, company) VALUES ('x@example.com', 'Other')"
                )
            no_vendor_calls(hs)
            conn.execute(
                "INSERT INTO hubspot.contact (email, company) VALUES ('a@example.com', 'Acme')"
            )
            forget_requests(hs)
            with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
                conn.execute("UPDATE hubspot.contact SET company = 'Moved'")
            no_vendor_calls(hs)
    finally:
        admin(
            hs,
            "DROP POLICY wp_read ON hubspot.contact",
            "DROP POLICY wp_acme ON hubspot.contact",
            "DROP POLICY wp_upd ON hubspot.contact",
            "ALTER TABLE hubspot.contact DISABLE ROW LEVEL SECURITY",
        )


def test_a_local_foreign_key_on_insert_fails_before_the_api(hs: Harness) -> None:
    admin(
        hs,
        "ALTER TABLE hubspot.contact ADD CONSTRAINT wp_contact_user "
        "FOREIGN KEY (user_id) REFERENCES public.users (id)",
    )
    try:
        with (
            psycopg.connect(hs.url, autocommit=True) as conn,
            pytest.raises(errors.ForeignKeyViolation),
        ):
            conn.execute(
                "INSERT INTO hubspot.contact (email, user_id) VALUES ('fk@example.com', 999)"
            )
        no_vendor_calls(hs)
    finally:
        admin(hs, "ALTER TABLE hubspot.contact DROP CONSTRAINT wp_contact_user")


def test_a_users_trigger_sees_the_row_and_its_error_comes_first(hs: Harness) -> None:
    admin(
        hs,
        "CREATE FUNCTION public.wp_no_spam() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.email LIKE '%spam%' THEN RAISE EXCEPTION 'no spam' USING ERRCODE = 'P0001'; "
        "END IF; NEW.lastname := upper(NEW.lastname); RETURN NEW; END $$",
        "CREATE TRIGGER wp_no_spam BEFORE INSERT OR UPDATE ON hubspot.contact "
        "FOR EACH ROW EXECUTE FUNCTION public.wp_no_spam()",
    )
    try:
        with psycopg.connect(hs.url, autocommit=True) as conn:
            with pytest.raises(errors.RaiseException, match="no spam"):
                conn.execute("INSERT INTO hubspot.contact (email) VALUES ('spam@example.com')")
            no_vendor_calls(hs)
            # What the trigger changes is what the vendor receives.
            conn.execute(
                "INSERT INTO hubspot.contact (email, lastname) VALUES ('t@example.com', 'lovelace')"
            )
        [obj] = hs.sandbox.objects()
        assert obj["properties"]["lastname"] == "LOVELACE"  # type: ignore[index]
    finally:
        admin(
            hs,
            "DROP TRIGGER wp_no_spam ON hubspot.contact",
            "DROP FUNCTION public.wp_no_spam()",
        )


# -- 1. the row set is fixed once ------------------------------------------------------


def test_a_volatile_where_sends_exactly_the_rows_it_changes(hs: Harness) -> None:
    seed(hs, *(f"r{i}@example.com" for i in range(8)))
    forget_requests(hs)
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "UPDATE hubspot.contact SET company = 'Sampled' WHERE id IN "
            "(SELECT id FROM hubspot.contact ORDER BY random() LIMIT 3)"
        )
        assert cur.rowcount == 3
    sampled = [o for o in hs.sandbox.objects() if o["properties"].get("company") == "Sampled"]  # type: ignore[attr-defined]
    assert len(sampled) == 3
    local = hs.local("SELECT id FROM hubspot.contact WHERE company = 'Sampled' ORDER BY id")
    assert sorted(str(o["id"]) for o in sampled) == [row[0] for row in local]


def test_volatile_set_expressions_are_evaluated_once(hs: Harness) -> None:
    seed(hs, "v1@example.com", "v2@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("UPDATE hubspot.contact SET company = md5(random()::text)")
    # The no-drift check compares the vendor's values with the local ones.


def test_read_committed_recheck_sends_only_the_rows_updated(hs: Harness) -> None:
    """Session B's UPDATE waits for A's row lock; when A commits, PostgreSQL re-checks
    that row, and A's newly inserted row is not B's to update: B's vendor calls are
    exactly B's local changes."""
    [held, free] = seed(hs, "held@example.com", "free@example.com")
    a = psycopg.connect(hs.url)
    errors_seen: list[BaseException] = []
    done = threading.Event()

    def session_b() -> None:
        try:
            with psycopg.connect(hs.url, autocommit=True) as b:
                b.execute("UPDATE hubspot.contact SET lastname = 'B' WHERE company IS NULL")
        except BaseException as exc:  # reported below
            errors_seen.append(exc)
        finally:
            done.set()

    try:
        a.execute("UPDATE hubspot.contact SET company = 'A' WHERE id = %s", (held,))
        a.execute("INSERT INTO hubspot.contact (email) VALUES ('new@example.com')")
        thread = threading.Thread(target=session_b)
        thread.start()
        time.sleep(0.5)
        assert not done.is_set(), "B should wait for A's row lock"
        a.commit()
        thread.join(20)
    finally:
        a.close()
    assert not errors_seen, errors_seen
    rows = dict(hs.local("SELECT email, lastname FROM hubspot.contact"))
    assert rows == {"held@example.com": None, "free@example.com": "B", "new@example.com": None}
    assert free


# -- 2. DELETE: the local delete decides before the archive ------------------------------


@pytest.mark.parametrize("in_block", [False, True])
def test_delete_of_a_referenced_contact_archives_nothing(hs: Harness, in_block: bool) -> None:
    [ident] = seed(hs, "ref@example.com")
    admin(
        hs,
        "CREATE TABLE public.wp_notes (contact_id text REFERENCES hubspot.contact (id))",
        f"INSERT INTO public.wp_notes VALUES ('{ident}')",
    )
    try:
        forget_requests(hs)
        with psycopg.connect(hs.url, autocommit=not in_block) as conn:
            with pytest.raises(errors.ForeignKeyViolation):
                conn.execute("DELETE FROM hubspot.contact WHERE id = %s", (ident,))
            if in_block:
                conn.rollback()
        no_vendor_calls(hs)
        assert hs.local("SELECT id FROM hubspot.contact") == [(ident,)]
    finally:
        admin(hs, "DROP TABLE public.wp_notes")


# -- 3. compensation restores only what the statement changed ----------------------------


def test_rollback_restores_only_the_changed_property(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        [ident] = [
            str(
                conn.execute(  # type: ignore[index]
                    "INSERT INTO hubspot.contact (email, company, phone) "
                    "VALUES ('c@example.com', 'Old', '1') RETURNING id"
                ).fetchone()[0]
            )
        ]
    with psycopg.connect(hs.url) as conn:
        conn.execute("UPDATE hubspot.contact SET company = 'Mine' WHERE id = %s", (ident,))
        hs.sandbox.http.patch(  # someone edits another property in HubSpot meanwhile
            f"/crm/v3/objects/contacts/{ident}",
            json={"properties": {"phone": "2"}},
            headers={"Authorization": "Bearer sandbox-token"},
        ).raise_for_status()
        conn.rollback()
    hs.settle()
    [obj] = hs.sandbox.objects()
    assert obj["properties"]["company"] == "Old"  # type: ignore[index]
    assert obj["properties"]["phone"] == "2"  # type: ignore[index]  # not clobbered
    hs.local("UPDATE hubspot.contact SET phone = '2' RETURNING id")  # as the sync would


# -- 4. nothing writes a synced table behind the write path ------------------------------


BYPASSES = [
    "SET search_path TO hubspot; INSERT INTO contact (id, email) VALUES ('x', 'x@example.com')",
    "DO $$ BEGIN INSERT INTO hubspot.contact (id, email) VALUES ('d', 'd@example.com'); END $$",
    "DO $$ BEGIN UPDATE hubspot.contact SET company = 'Sneaky'; END $$",
    "DO $$ BEGIN DELETE FROM hubspot.contact; END $$",
    "SELECT public.wp_sneaky_insert()",
]


@pytest.mark.parametrize("sql", BYPASSES)
def test_writes_the_parser_cannot_see_are_refused(hs: Harness, sql: str) -> None:
    [ident] = seed(hs, "kept@example.com")
    admin(
        hs,
        "CREATE OR REPLACE FUNCTION public.wp_sneaky_insert() RETURNS void LANGUAGE sql AS "
        "$$ INSERT INTO hubspot.contact (id, email) VALUES ('f', 'f@example.com') $$",
    )
    forget_requests(hs)
    try:
        with psycopg.connect(hs.url, autocommit=True) as conn:
            with pytest.raises(errors.FeatureNotSupported, match=r"synced table hubspot\.contact"):
                conn.execute(sql)  # type: ignore[arg-type]
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        admin(hs, "DROP FUNCTION public.wp_sneaky_insert()")
    no_vendor_calls(hs)
    assert hs.local("SELECT id, company FROM hubspot.contact") == [(ident, None)]


def test_prepare_then_execute_under_another_search_path_is_refused(hs: Harness) -> None:
    admin(
        hs,
        "CREATE SCHEMA IF NOT EXISTS wp_app",
        "CREATE TABLE IF NOT EXISTS wp_app.contact (id text, email text)",
    )
    try:
        with psycopg.connect(hs.url, autocommit=True) as conn:
            conn.execute("SET search_path TO wp_app")
            conn.execute("PREPARE wp_ins AS INSERT INTO contact (id, email) VALUES ('p', 'p@x.io')")
            conn.execute("SET search_path TO hubspot")  # the plan is re-analysed under it
            with pytest.raises(errors.FeatureNotSupported):
                conn.execute("EXECUTE wp_ins")
    finally:
        admin(hs, "DROP SCHEMA wp_app CASCADE")
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]


def test_a_view_created_after_startup_cannot_write_the_synced_table(hs: Harness) -> None:
    admin(hs, "CREATE VIEW public.wp_late_view AS SELECT id, email FROM hubspot.contact")
    try:
        with (
            psycopg.connect(hs.url, autocommit=True) as conn,
            pytest.raises(errors.FeatureNotSupported),
        ):
            conn.execute("INSERT INTO public.wp_late_view VALUES ('v', 'v@example.com')")
    finally:
        admin(hs, "DROP VIEW public.wp_late_view")
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]


def test_a_trigger_on_an_ordinary_table_cannot_write_the_synced_table(hs: Harness) -> None:
    admin(
        hs,
        "CREATE FUNCTION public.wp_mirror() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO hubspot.contact (id, email) VALUES ('m' || NEW.id, NEW.email); "
        "RETURN NEW; END $$",
        "CREATE TRIGGER wp_mirror AFTER INSERT ON public.users "
        "FOR EACH ROW EXECUTE FUNCTION public.wp_mirror()",
    )
    try:
        with (
            psycopg.connect(hs.url, autocommit=True) as conn,
            pytest.raises(errors.FeatureNotSupported),
        ):
            conn.execute("INSERT INTO public.users (email) VALUES ('m@example.com')")
    finally:
        admin(hs, "DROP TRIGGER wp_mirror ON public.users", "DROP FUNCTION public.wp_mirror()")
    assert hs.local("SELECT count(*) FROM public.users") == [(0,)]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM public.users",
        "UPDATE public.users SET id = id + 100",
        "TRUNCATE public.users CASCADE",
    ],
)
def test_foreign_key_cascades_into_a_synced_table_are_refused(hs: Harness, sql: str) -> None:
    admin(
        hs,
        "ALTER TABLE hubspot.contact ADD CONSTRAINT wp_contact_user FOREIGN KEY (user_id) "
        "REFERENCES public.users (id) ON DELETE CASCADE ON UPDATE CASCADE",
    )
    try:
        with psycopg.connect(hs.url, autocommit=True) as conn:
            user = conn.execute(  # type: ignore[index]
                "INSERT INTO public.users (email) VALUES ('u@example.com') RETURNING id"
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO hubspot.contact (email, user_id) VALUES ('u@example.com', %s)",
                (user,),
            )
            forget_requests(hs)
            with pytest.raises(errors.FeatureNotSupported):
                conn.execute(sql)  # type: ignore[arg-type]
        no_vendor_calls(hs)
        assert hs.local("SELECT user_id FROM hubspot.contact") == [(user,)]
        assert hs.local("SELECT id FROM public.users") == [(user,)]
    finally:
        admin(hs, "ALTER TABLE hubspot.contact DROP CONSTRAINT wp_contact_user")


def test_a_guessed_token_does_not_pass_the_guard(hs: Harness) -> None:
    seed(hs, "kept@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("SET writeproxy.token = 'guess'")
        with pytest.raises(errors.FeatureNotSupported):
            conn.execute("DO $$ BEGIN DELETE FROM hubspot.contact; END $$")
        # The proxy's own statements still work in that session.
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('ok@example.com')")
        # ... and never leave their token behind for the client to read.
        assert conn.execute("SELECT current_setting('writeproxy.token', true)").fetchone() in (
            ("guess",),
            ("",),
        )
    with psycopg.connect(hs.url) as conn:
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('ok2@example.com')")
        assert conn.execute("SELECT current_setting('writeproxy.token', true)").fetchone() in (
            (None,),
            ("",),
        )
        conn.commit()


def test_a_sync_role_writes_directly(
    hs: Harness, role: str, synced_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Sync tools write as a role listed in the sync_roles setting; other roles (even a
    superuser) are refused."""
    admin(hs, f"GRANT INSERT, DELETE ON hubspot.contact TO {role}")
    env = synced_config(tmp_path, sandbox, top=f'sync_roles = ["{role}"]\n')
    try:
        with run_proxy(tmp_path, "--upstream", synced_url, env=env):
            # Installed at startup: the proxy's own setting is what the guard holds.
            assert hs.local("SELECT sync_roles FROM writeproxy.guard") == [([role],)]
            url = hs.direct_url.replace("postgres@", f"{role}@")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO hubspot.contact (id, email) VALUES ('s1', 's@example.com')"
                )
                conn.execute("DELETE FROM hubspot.contact WHERE id = 's1'")
            with (
                psycopg.connect(hs.direct_url, autocommit=True) as conn,
                pytest.raises(errors.FeatureNotSupported),
            ):
                conn.execute("INSERT INTO hubspot.contact (id, email) VALUES ('s2', 's@x.io')")
    finally:
        admin(hs, "UPDATE writeproxy.guard SET sync_roles = '{}'")


def test_a_disabled_guard_is_enabled_again(hs: Harness) -> None:
    """An administrator's ALTER TABLE ... DISABLE TRIGGER does not leave the synced table
    unguarded: the recovery loop installs the guard again (so does every startup)."""
    admin(hs, 'ALTER TABLE hubspot.contact DISABLE TRIGGER "_writeproxy_guard"')
    enabled = (
        "SELECT tgenabled FROM pg_trigger WHERE tgname = '_writeproxy_guard' "
        "AND tgrelid = 'hubspot.contact'::regclass"
    )
    deadline = time.monotonic() + 20
    while hs.local(enabled) != [("O",)]:
        assert time.monotonic() < deadline, "the guard was not enabled again"
        time.sleep(0.2)
    with (
        psycopg.connect(hs.url, autocommit=True) as conn,
        pytest.raises(errors.FeatureNotSupported),
    ):
        conn.execute(
            "DO $$ BEGIN INSERT INTO hubspot.contact (id, email) VALUES ('d', 'd@x.io'); END $$"
        )


# -- 5. nothing shadows the client's own tables -----------------------------------------


def test_insert_select_from_the_same_table_by_its_unqualified_name(hs: Harness) -> None:
    seed(hs, "a@example.com", "b@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("SET search_path TO hubspot, public")
        cur = conn.execute(
            "INSERT INTO contact (email, firstname) SELECT 'copy-' || email, firstname FROM contact"
        )
        assert cur.rowcount == 2
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(4,)]


def test_a_sessions_own_temp_table_named_like_the_synced_one(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE contact (email text)")
        conn.execute("INSERT INTO pg_temp.contact VALUES ('temp@example.com')")
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('real@example.com')")
        assert conn.execute("SELECT email FROM pg_temp.contact").fetchall() == [
            ("temp@example.com",)
        ]
    assert hs.local("SELECT email FROM hubspot.contact") == [("real@example.com",)]


# -- 6. only the upstream URL's database is synced --------------------------------------


def test_another_database_on_the_same_server_is_not_synced(hs: Harness) -> None:
    from proxy.demo import schema_sql

    server = hs.direct_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS wp_other")
        conn.execute("CREATE DATABASE wp_other")
    try:
        with psycopg.connect(f"{server}/wp_other", autocommit=True) as conn:
            conn.execute(schema_sql())  # type: ignore[arg-type]
        with psycopg.connect(hs.proxy.url(db="wp_other"), autocommit=True) as conn:
            conn.execute("INSERT INTO hubspot.contact (id, email) VALUES ('t1', 't@example.com')")
            conn.execute("UPDATE hubspot.contact SET company = 'Test'")
            assert conn.execute("SELECT id, company FROM hubspot.contact").fetchall() == [
                ("t1", "Test")
            ]
        no_vendor_calls(hs)
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS wp_other WITH (FORCE)")


# -- 10. identifiers, encodings and path segments ----------------------------------------


def test_a_keyword_alias_on_the_target(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO hubspot.contact AS \"user\" (email) VALUES ('kw@example.com') "
            'RETURNING "user".email'
        ).fetchone()
        assert row == ("kw@example.com",)
        conn.execute(
            "UPDATE hubspot.contact AS \"order\" SET company = 'K' WHERE \"order\".email LIKE 'kw%'"
        )
        conn.execute('DELETE FROM hubspot.contact AS "select" WHERE "select".company = \'K\'')
    assert hs.sandbox.objects() == []


def test_a_latin1_session_writes_synced_rows(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("SET client_encoding TO 'LATIN1'")
        conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) VALUES ('l1@example.com', 'Zoë')"
        )
        conn.execute(
            "UPDATE hubspot.contact SET lastname = 'Müller' WHERE email = 'l1@example.com'"
        )
        assert conn.execute("SELECT firstname, lastname FROM hubspot.contact").fetchone() == (
            "Zoë",
            "Müller",
        )
    [obj] = hs.sandbox.objects()
    assert (obj["properties"]["firstname"], obj["properties"]["lastname"]) == ("Zoë", "Müller")  # type: ignore[index]


def test_association_ids_are_path_segments_not_paths(hs: Harness) -> None:
    [contact] = seed(hs, "as@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute(
                "INSERT INTO hubspot.associations_contact_deal (contact_id, deal_id) "
                "VALUES (%s, '..')",
                (contact,),
            )
        assert conn.execute("SELECT 1").fetchone() == (1,)
    paths = [str(r["path"]) for r in hs.sandbox.vendor_requests()]
    assert not any(p.rstrip("/").endswith("/deals") or "/../" in p for p in paths), paths


def test_a_query_without_its_terminator_is_postgresqls_to_refuse(hs: Harness) -> None:
    """A synced write whose Query text is not NUL-terminated is not run with its last
    character cut: PostgreSQL answers it as it would without the proxy."""
    from proxy.wire.framing import message
    from tests.integration.test_robustness import RawClient, startup_packet

    port = int(hs.url.split(":")[-1].split("/")[0])
    with RawClient(port) as client:
        client.send(startup_packet("postgres", database="synced"))
        client.read_until(b"Z")
        client.send(message(b"Q", b"INSERT INTO hubspot.contact (email) VALUES ('cut@x.io'))"))
        answer = client.read_until(b"Z")
        assert [kind for kind, _ in answer] == [ord("E"), ord("Z")]
    no_vendor_calls(hs)
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]


# -- 7. values: the local row is what the vendor holds ------------------------------------


def test_a_numeric_keeps_every_digit(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        ident = conn.execute(  # type: ignore[index]
            "INSERT INTO hubspot.deal (dealname, amount, dealstage, pipeline) VALUES "
            "('Exact', 12345678901234567890.123456789, 'qualifiedtobuy', 'default') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "UPDATE hubspot.deal SET amount = amount + 0.000000001 WHERE id = %s", (ident,)
        )
    [deal] = hs.sandbox.objects("deals")
    assert deal["properties"]["amount"] == "12345678901234567890.12345679"  # type: ignore[index]
    assert hs.local("SELECT amount::text FROM hubspot.deal") == [("12345678901234567890.12345679",)]


def test_microseconds_are_stored_as_the_vendors_milliseconds(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO hubspot.deal (dealname, closedate, dealstage, pipeline) VALUES "
            "('Ms', '2024-05-01 10:30:00.123456+00', 'qualifiedtobuy', 'default') "
            "RETURNING closedate::text"
        ).fetchone()
    assert row == ("2024-05-01 10:30:00.123+00",)  # RETURNING shows what is stored
    [deal] = hs.sandbox.objects("deals")
    assert deal["properties"]["closedate"] == "2024-05-01T10:30:00.123Z"  # type: ignore[index]


def test_an_empty_string_is_stored_as_the_vendors_null(hs: Harness) -> None:
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("INSERT INTO hubspot.contact (email, company) VALUES ('e@example.com', '')")
        assert conn.execute("SELECT company FROM hubspot.contact").fetchone() == (None,)
        conn.execute("UPDATE hubspot.contact SET company = 'Acme'")
        conn.execute("UPDATE hubspot.contact SET company = ''")
        assert conn.execute("SELECT company FROM hubspot.contact").fetchone() == (None,)
    [obj] = hs.sandbox.objects()
    assert obj["properties"].get("company") in (None, "")  # type: ignore[attr-defined]


# -- 9. ON CONFLICT DO NOTHING reads the vendor in batches ---------------------------------


def test_do_nothing_checks_the_vendor_with_batch_reads(hs: Harness) -> None:
    # 5 contacts the vendor knows but this database does not (the sync is behind).
    for i in range(5):
        hs.sandbox.http.post(
            "/crm/v3/objects/contacts",
            json={"properties": {"email": f"Known{i}@example.com"}},
            headers={"Authorization": "Bearer sandbox-token"},
        ).raise_for_status()
    forget_requests(hs)
    with psycopg.connect(hs.url, autocommit=True) as conn:
        cur = conn.execute(
            "INSERT INTO hubspot.contact (email) SELECT e FROM ("
            "SELECT 'known' || g || '@example.com' AS e FROM generate_series(0, 4) g "
            "UNION ALL SELECT 'new' || g || '@example.com' FROM generate_series(1, 295) g) s "
            "ON CONFLICT (email) DO NOTHING"
        )
        assert cur.rowcount == 295
    reads = [r for r in hs.sandbox.vendor_requests() if "/batch/read" in str(r["path"])]
    assert len(reads) == 3  # 300 keys, 100 per call
    assert not [r for r in hs.sandbox.vendor_requests() if r["method"] == "GET"]
    # The vendor's 5 are not local: bring them along as the sync would.
    for obj in hs.sandbox.objects():
        email = str(obj["properties"]["email"])  # type: ignore[index]
        if email.startswith("known"):
            hs.local(
                "INSERT INTO hubspot.contact (id, email) VALUES (%s, %s) RETURNING id",
                str(obj["id"]),
                email,
            )


# -- 11. PostgreSQL's own answers: read-only, cancel, statement_timeout, 21000 -------------


def test_a_read_only_transaction_is_refused_in_postgresqls_words(hs: Harness) -> None:
    [ident] = seed(hs, "ro@example.com")
    forget_requests(hs)
    for sql in (
        "INSERT INTO hubspot.contact (email) VALUES ('x@example.com')",
        "UPDATE hubspot.contact SET company = 'X'",
        "DELETE FROM hubspot.contact",
    ):
        with psycopg.connect(hs.url) as conn:
            conn.execute("BEGIN READ ONLY")
            with pytest.raises(errors.ReadOnlySqlTransaction) as info:
                conn.execute(sql)  # type: ignore[arg-type]
            verb = sql.split()[0]
            assert str(info.value).strip() == f"cannot execute {verb} in a read-only transaction"
            conn.rollback()
    no_vendor_calls(hs)
    assert hs.local("SELECT id FROM hubspot.contact") == [(ident,)]


def test_a_cancel_while_the_vendor_answers_undoes_the_call(hs: Harness) -> None:
    hs.sandbox.fault(match={"method": "POST", "path_regex": "objects/contacts$"}, delay_ms=1500)
    with psycopg.connect(hs.url, autocommit=True) as conn:
        timer = threading.Timer(0.5, conn.cancel)
        timer.start()
        with pytest.raises(errors.QueryCanceled, match="user request"):
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('c@example.com')")
        timer.join()
        assert conn.execute("SELECT count(*) FROM hubspot.contact").fetchone() == (0,)
    hs.settle()
    assert hs.sandbox.objects() == []  # created, then archived by the journal


def test_statement_timeout_counts_the_vendors_time(hs: Harness) -> None:
    hs.sandbox.fault(match={"method": "POST", "path_regex": "objects/contacts$"}, delay_ms=1200)
    with psycopg.connect(hs.url) as conn:
        conn.execute("SET statement_timeout = '500ms'")
        with pytest.raises(errors.QueryCanceled, match="statement timeout"):
            conn.execute("INSERT INTO hubspot.contact (email) VALUES ('t@example.com')")
        conn.rollback()
    hs.settle()
    assert hs.sandbox.objects() == []


def test_on_conflict_affecting_a_row_twice_is_21000(hs: Harness) -> None:
    seed(hs, "twice@example.com")
    forget_requests(hs)
    with (
        psycopg.connect(hs.url, autocommit=True) as conn,
        pytest.raises(errors.CardinalityViolation),
    ):
        conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) VALUES "
            "('twice@example.com', 'A'), ('twice@example.com', 'B') "
            "ON CONFLICT (email) DO UPDATE SET firstname = excluded.firstname"
        )
    no_vendor_calls(hs)


# -- found by the randomized test (test_exactness_random) ---------------------------------


def vendor_values(hs: Harness, *names: str) -> tuple[object, ...]:
    """The named properties of the vendor's only contact."""
    [obj] = hs.sandbox.objects()
    properties = obj["properties"]
    assert isinstance(properties, dict)
    return tuple(properties.get(name) for name in names)


def test_a_rolled_back_change_of_case_is_undone(hs: Harness) -> None:
    seed(hs, "case@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("UPDATE hubspot.contact SET company = 'acme', phone = '7'")
    with psycopg.connect(hs.url) as conn:
        conn.execute("UPDATE hubspot.contact SET company = 'ACME', phone = '007'")
        conn.rollback()
    hs.settle()
    assert vendor_values(hs, "company", "phone") == ("acme", "7")


def test_an_error_frees_the_rows_but_the_undo_keeps_the_other_sessions_write(
    hs: Harness,
) -> None:
    """An error releases the transaction's row locks at once (PostgreSQL aborts it then;
    ROLLBACK only ends the block): another session may write the same contact before
    the undo runs. The undo restores what it changed and leaves the other's write."""
    seed(hs, "lock@example.com")
    with psycopg.connect(hs.url, autocommit=True) as conn:
        conn.execute("UPDATE hubspot.contact SET lastname = 'adams'")
    with psycopg.connect(hs.url) as a, psycopg.connect(hs.url, autocommit=True) as b:
        a.execute("UPDATE hubspot.contact SET lastname = 'clark'")
        with pytest.raises(errors.DivisionByZero):
            a.execute("SELECT 1/0")
        b.execute("SET lock_timeout = '5s'")
        b.execute("UPDATE hubspot.contact SET firstname = 'bob'")
        a.rollback()
    hs.settle()
    assert vendor_values(hs, "lastname", "firstname") == ("adams", "bob")


def test_delete_then_upsert_of_the_same_email_in_one_transaction_is_refused(
    hs: Harness,
) -> None:
    [ident] = seed(hs, "again@example.com")
    with psycopg.connect(hs.url) as conn:
        conn.execute("DELETE FROM hubspot.contact WHERE email = 'again@example.com'")
        with pytest.raises(errors.UniqueViolation, match="deleted earlier in this transaction"):
            conn.execute(
                "INSERT INTO hubspot.contact (email, company) VALUES ('again@example.com', 'b') "
                "ON CONFLICT (email) DO UPDATE SET company = excluded.company"
            )
        conn.rollback()
    hs.settle()
    [obj] = hs.sandbox.objects()
    assert str(obj["id"]) == ident
    assert obj["properties"].get("company") is None  # type: ignore[attr-defined]  # undone


def test_rollback_to_a_savepoint_made_before_the_first_vendor_change_undoes_first(
    hs: Harness,
) -> None:
    seed(hs, "sp@example.com")
    with psycopg.connect(hs.url) as conn:
        conn.execute("SAVEPOINT early")
        conn.execute("UPDATE hubspot.contact SET lastname = 'clark'")
        conn.execute("ROLLBACK TO SAVEPOINT early")
        # Undone before the reply, while the row was still locked.
        [obj] = hs.sandbox.objects()
        assert obj["properties"].get("lastname") is None  # type: ignore[attr-defined]
        conn.commit()


def test_a_serializable_commit_that_fails_archives_nothing(hs: Harness) -> None:
    """A SERIALIZABLE COMMIT can fail its serializability check: the archive of its
    DELETE waits for the COMMIT to succeed."""
    [ident] = seed(hs, "ser@example.com")
    with psycopg.connect(hs.url) as a, psycopg.connect(hs.url) as b:
        for conn in (a, b):
            conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        a.execute("SELECT count(*) FROM public.orgs")
        b.execute("SELECT count(*) FROM hubspot.contact")
        a.execute("DELETE FROM hubspot.contact WHERE id = %s", (ident,))
        b.execute("INSERT INTO public.orgs (name) VALUES ('p')")
        b.commit()
        with pytest.raises(errors.SerializationFailure):
            a.commit()
    hs.settle()
    assert [str(o["id"]) for o in hs.sandbox.objects()] == [ident]
    # ... and a SERIALIZABLE DELETE that commits is archived.
    with psycopg.connect(hs.url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        conn.execute("DELETE FROM hubspot.contact WHERE id = %s", (ident,))
        conn.commit()
    hs.settle()
    assert hs.sandbox.objects() == []


def test_a_serializable_archive_that_fails_after_commit_is_completed_by_the_journal(
    hs: Harness,
) -> None:
    """The archive of a SERIALIZABLE DELETE is sent after its COMMIT: if the vendor
    refuses it then (down, rate limited), the DELETE is still committed, so the journal
    must keep the archive open and send it again, not record it as failed."""
    [ident] = seed(hs, "ser-later@example.com")
    with psycopg.connect(hs.url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        conn.execute("DELETE FROM hubspot.contact WHERE id = %s", (ident,))
        # Every attempt of the live archive fails (5 attempts), and so does the
        # journal's first completion (5 more): the journal keeps trying.
        hs.sandbox.fault(
            match={"method": "DELETE", "path_regex": ARCHIVE_PATH}, status=503, times=10
        )
        conn.commit()
    hs.settle()
    assert hs.sandbox.objects() == []
    assert hs.local("SELECT count(*) FROM hubspot.contact") == [(0,)]


def test_an_upsert_racing_an_archive_after_commit_does_not_adopt_the_archived_object(
    hs: Harness,
) -> None:
    """Between a SERIALIZABLE DELETE's COMMIT and its archive the object is still live
    at the vendor: an upsert by its email from another session matches it (HubSpot
    answers with the same id) and would insert that id locally just before the archive
    lands — a row for an archived object. The upsert fails with 40001 instead, and its
    retry creates a new object."""
    [ident] = seed(hs, "race@example.com")
    upsert = (
        "INSERT INTO hubspot.contact (email, company) VALUES ('race@example.com', 'b') "
        "ON CONFLICT (email) DO UPDATE SET company = EXCLUDED.company RETURNING id"
    )
    with psycopg.connect(hs.url) as a, psycopg.connect(hs.url, autocommit=True) as b:
        a.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        a.execute("DELETE FROM hubspot.contact WHERE id = %s", (ident,))
        # The archive reaches the vendor only after the upsert has matched the object.
        hs.sandbox.fault(match={"method": "DELETE", "path_regex": ARCHIVE_PATH}, delay_ms=1500)
        a.commit()
        with pytest.raises(errors.SerializationFailure) as refused:
            b.execute(upsert)
        assert ident in str(refused.value)
        hs.settle()
        [(again,)] = b.execute(upsert).fetchall()
    assert str(again) != ident
    hs.settle()
    assert [str(o["id"]) for o in hs.sandbox.objects()] == [str(again)]
    assert hs.local("SELECT id, company FROM hubspot.contact") == [(str(again), "b")]


def test_a_token_leaked_through_the_clients_own_expressions_is_worthless(hs: Harness) -> None:
    """The client's expressions run inside the proxy's statements, while the guard's
    token is set: one that reports the token (a NOTICE in the dry run, a RETURNING
    function in the apply) learns a token bound to that exact statement text."""
    admin(
        hs,
        "CREATE FUNCTION public.wp_leak(v text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE NOTICE 'token=%', current_setting('writeproxy.token', true); RETURN v; END $$",
    )
    notices: list[str] = []
    try:
        with psycopg.connect(hs.url, autocommit=True) as conn:
            conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
            conn.execute(
                "INSERT INTO hubspot.contact (email) VALUES (public.wp_leak('leak@example.com')) "
                "RETURNING public.wp_leak(id)"
            )
            tokens = {n.removeprefix("token=") for n in notices if n.startswith("token=")}
            assert tokens and all(tokens), notices  # the expressions did see a token
            for token in tokens:
                conn.execute("SELECT set_config('writeproxy.token', %s, false)", (token,))
                with pytest.raises(errors.FeatureNotSupported):
                    conn.execute(
                        "DO $$ BEGIN INSERT INTO hubspot.contact (id, email) "
                        "VALUES ('x', 'x@example.com'); END $$"
                    )
    finally:
        admin(hs, "DROP FUNCTION public.wp_leak(text)")
    assert hs.local("SELECT email FROM hubspot.contact") == [("leak@example.com",)]


# -- found by an adversarial review: the client's own operators and functions -------------


def test_the_secret_never_reaches_a_clients_operator(hs: Harness, role: str) -> None:
    """A role that puts its own ``||`` ahead of pg_catalog's sees every text the proxy's
    statements concatenate: the guard's secret is never one of them."""
    admin(
        hs,
        f"GRANT INSERT, UPDATE ON hubspot.contact TO {role}",
        f"GRANT CREATE ON SCHEMA public TO {role}",
    )
    seen: list[str] = []
    with as_role(hs) as conn:
        conn.execute("CREATE TABLE public.wp_loot (t text)")
        conn.execute(
            "CREATE FUNCTION public.wp_spycat(a text, b text) RETURNS text LANGUAGE plpgsql AS "
            "$f$ BEGIN INSERT INTO public.wp_loot VALUES (a), (b); "
            "RETURN a OPERATOR(pg_catalog.||) b; END $f$"
        )
        conn.execute(
            "CREATE OPERATOR public.|| "
            "(leftarg = text, rightarg = text, function = public.wp_spycat)"
        )
        conn.execute("SET search_path = public, pg_catalog")
        conn.execute("INSERT INTO hubspot.contact (email) VALUES ('spy@example.com')")
        conn.execute("UPDATE hubspot.contact SET firstname = 'x'")
        seen = [str(row[0]) for row in conn.execute("SELECT t FROM public.wp_loot")]
    [[secret]] = hs.local("SELECT secret FROM writeproxy.guard")
    assert not any(secret in text for text in seen)


def test_a_clients_overload_of_a_function_the_proxy_uses_changes_nothing(
    hs: Harness, role: str
) -> None:
    """An exact-type overload wins over pg_catalog's polymorphic function whatever the
    search_path: the proxy's statements name pg_catalog's."""
    admin(
        hs,
        f"GRANT INSERT, UPDATE ON hubspot.contact TO {role}",
        f"GRANT CREATE ON SCHEMA public TO {role}",
    )
    with as_role(hs) as conn:
        conn.execute(
            "CREATE FUNCTION public.jsonb_populate_recordset(base hubspot.contact, j jsonb) "
            "RETURNS SETOF hubspot.contact LANGUAGE plpgsql AS $f$ DECLARE r hubspot.contact; "
            "BEGIN FOR r IN SELECT * FROM pg_catalog.jsonb_populate_recordset(base, j) LOOP "
            "r.firstname := 'EVIL'; RETURN NEXT r; END LOOP; END $f$"
        )
        conn.execute(
            "CREATE FUNCTION public.to_jsonb(r hubspot.contact) RETURNS jsonb LANGUAGE sql AS "
            '$f$ SELECT pg_catalog.to_jsonb(r) || \'{"lastname": "Pwned"}\'::jsonb $f$'
        )
        row = conn.execute(
            "INSERT INTO hubspot.contact (email, firstname) VALUES ('h@example.com', 'Good') "
            "RETURNING firstname, lastname"
        ).fetchone()
        assert row == ("Good", None)
        conn.execute("UPDATE hubspot.contact SET firstname = 'New'")
    assert vendor_values(hs, "firstname", "lastname") == ("New", None)


def test_writes_nested_in_the_proxys_statements_are_refused(hs: Harness) -> None:
    """A function in the client's RETURNING list, or a trigger of the synced table, runs
    inside the proxy's apply: the guard lets through only the rows the apply writes."""
    seed(hs, "v@example.com", "w@example.com")
    admin(
        hs,
        "CREATE FUNCTION public.wp_touch(x text) RETURNS text LANGUAGE sql AS $f$ "
        "UPDATE hubspot.contact SET firstname = 'LOCALONLY' WHERE email = 'v@example.com' "
        "RETURNING x $f$",
        "CREATE FUNCTION public.wp_echo() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN "
        "IF NEW.email = 'echo@example.com' THEN "
        "DELETE FROM hubspot.contact WHERE email = 'w@example.com'; END IF; "
        "RETURN NEW; END $f$",
        "CREATE TRIGGER wp_echo AFTER INSERT ON hubspot.contact "
        "FOR EACH ROW EXECUTE FUNCTION public.wp_echo()",
    )
    try:
        with psycopg.connect(hs.url, autocommit=True) as conn:
            with pytest.raises(errors.FeatureNotSupported):
                conn.execute(
                    "INSERT INTO hubspot.contact (email) VALUES ('a@example.com') "
                    "RETURNING public.wp_touch(id)"
                )
            with pytest.raises(errors.FeatureNotSupported):
                conn.execute("INSERT INTO hubspot.contact (email) VALUES ('echo@example.com')")
    finally:
        admin(
            hs,
            "DROP TRIGGER wp_echo ON hubspot.contact",
            "DROP FUNCTION public.wp_echo()",
            "DROP FUNCTION public.wp_touch(text)",
        )
    hs.settle()  # the creates were undone by the journal
    assert sorted(r[0] for r in hs.local("SELECT email FROM hubspot.contact")) == [
        "v@example.com",
        "w@example.com",
    ]


def test_a_second_execute_of_a_synced_portal_does_nothing(hs: Harness) -> None:
    """PostgreSQL runs a portal once: another Execute of it completes with no rows."""
    from proxy.wire.messages import extended
    from proxy.wire.messages.bind import Bind
    from proxy.wire.messages.parse import Parse
    from tests.integration.test_robustness import RawClient, startup_packet

    port = int(hs.url.split(":")[-1].split("/")[0])
    sql = "INSERT INTO hubspot.contact (email) VALUES ('once@example.com') RETURNING id"
    with RawClient(port) as client:
        client.send(startup_packet("postgres", database="synced"))
        client.read_until(b"Z")
        client.send(
            Parse("", sql, ()).encode()
            + Bind("", "", (), (), ()).encode()
            + extended.execute()
            + extended.execute()
            + extended.SYNC
        )
        answer = client.read_until(b"Z")
    tags = [body[:-1].decode() for kind, body in answer if kind == ord("C")]
    assert tags == ["INSERT 0 1", "INSERT 0 0"]
    assert [str(o["properties"]["email"]) for o in hs.sandbox.objects()] == ["once@example.com"]  # type: ignore[index]


def test_array_and_json_columns_round_trip_through_the_vendor(
    hs: Harness, killable: tuple[ProxyProcess, Callable[[], ProxyProcess]]
) -> None:
    """README type mapping: a text[] column is a multi-select (values joined with ';'),
    a jsonb column is sent as its JSON text; both come back as the same values."""
    headers = {"Authorization": "Bearer sandbox-token"}
    for prop in (
        {
            "name": "wp_tags",
            "label": "Tags",
            "type": "enumeration",
            "fieldType": "checkbox",
            "options": [{"label": v, "value": v} for v in ("a", "b", "c")],
        },
        {"name": "wp_prefs", "label": "Prefs", "type": "string", "fieldType": "text"},
    ):
        hs.sandbox.http.post(
            "/crm/v3/properties/contacts",
            json={"groupName": "contactinformation", **prop},
            headers=headers,
        ).raise_for_status()
    admin(hs, "ALTER TABLE hubspot.contact ADD COLUMN wp_tags text[], ADD COLUMN wp_prefs jsonb")
    proxy, start = killable
    try:
        proxy.stop()
        proxy = start()  # reads the new columns
        with psycopg.connect(proxy.url(db="synced"), autocommit=True) as conn:
            row = conn.execute(
                "INSERT INTO hubspot.contact (email, wp_tags, wp_prefs) VALUES "
                """('t@example.com', '{a,c}', '{"n": 12345678901234567890.5, "l": [1, 2]}') """
                "RETURNING wp_tags, wp_prefs::text"
            ).fetchone()
            assert row == (["a", "c"], '{"l": [1, 2], "n": 12345678901234567890.5}')
            conn.execute("UPDATE hubspot.contact SET wp_tags = '{b}'")
        [obj] = hs.sandbox.objects()
        properties = obj["properties"]
        assert isinstance(properties, dict)
        assert properties["wp_tags"] == "b"
        assert properties["wp_prefs"] == '{"l": [1, 2], "n": 12345678901234567890.5}'
        assert hs.local("SELECT wp_tags, wp_prefs::text FROM hubspot.contact") == [
            (["b"], '{"l": [1, 2], "n": 12345678901234567890.5}')
        ]
    finally:
        admin(hs, "ALTER TABLE hubspot.contact DROP COLUMN wp_tags, DROP COLUMN wp_prefs")
