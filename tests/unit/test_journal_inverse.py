"""The inverse of every journaled operation, as data."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from proxy.connectors.base import Operation as Op
from proxy.journal.inverse import (
    ArchiveObjects,
    NeedsLookup,
    Relink,
    RestoreProperties,
    Unrestorable,
    inverse,
    values_equal,
    values_match,
)
from proxy.journal.model import UNKNOWN, EntryState, Result
from tests.unit.test_journal_model import make_entry

S = EntryState


def test_create_is_undone_by_archiving_what_it_created() -> None:
    inputs = ({"properties": {"email": "a@x.io"}},) * 3
    entry = make_entry(
        Op.CREATE, S.APPLIED, inputs, results=(Result("11", True), None, Result("13", True))
    )
    assert inverse(entry) == [ArchiveObjects("contacts", ("11", "13"))]


def test_create_that_created_nothing_has_no_inverse() -> None:
    entry = make_entry(Op.CREATE, S.APPLIED, results=(None,))
    assert inverse(entry) == []


def test_create_with_unknown_outcome_needs_a_lookup_first() -> None:
    with pytest.raises(NeedsLookup):
        inverse(make_entry(Op.CREATE, S.INTENT))
    with pytest.raises(NeedsLookup):
        inverse(make_entry(Op.CREATE, S.UNKNOWN, results=(UNKNOWN,)))


def test_update_restores_only_the_changed_properties() -> None:
    inputs = (
        {"id": "1", "properties": {"firstname": "New", "phone": ""}},
        {"id": "2", "properties": {"lastname": "Z"}},
    )
    previous = {
        "1": {"firstname": "Old", "phone": "+1 555"},
        # a property the call did not send is not touched
        "2": {"lastname": "Y", "company": "Acme"},
    }
    entry = make_entry(Op.UPDATE, S.APPLIED, inputs, previous=previous, results=None)
    assert inverse(entry) == [
        RestoreProperties(
            "contacts",
            "1",
            {"firstname": "Old", "phone": "+1 555"},
            {"firstname": "New", "phone": ""},
        ),
        RestoreProperties("contacts", "2", {"lastname": "Y"}, {"lastname": "Z"}),
    ]


def test_update_skips_inputs_the_vendor_rejected() -> None:
    inputs = (
        {"id": "1", "properties": {"firstname": "New"}},
        {"id": "2", "properties": {"firstname": "New"}},
    )
    previous = {"1": {"firstname": "A"}, "2": {"firstname": "B"}}
    entry = make_entry(
        Op.UPDATE, S.APPLIED, inputs, previous=previous, results=(None, Result("2", False))
    )
    assert inverse(entry) == [
        RestoreProperties("contacts", "2", {"firstname": "B"}, {"firstname": "New"})
    ]


def test_update_with_unknown_outcome_restores_every_input() -> None:
    inputs = ({"id": "1", "properties": {"firstname": "New"}},)
    entry = make_entry(Op.UPDATE, S.UNKNOWN, inputs, previous={"1": {"firstname": None}})
    [restore] = inverse(entry)
    assert restore == RestoreProperties("contacts", "1", {"firstname": None}, {"firstname": "New"})


def test_update_without_previous_values_is_unrestorable() -> None:
    inputs = ({"id": "7", "properties": {"firstname": "New"}},)
    entry = make_entry(Op.UPDATE, S.APPLIED, inputs, previous=None)
    assert inverse(entry) == [
        Unrestorable("contacts", ("7",), "previous values were not journaled")
    ]


def test_upsert_archives_created_and_restores_updated() -> None:
    inputs = (
        {
            "id": "a@x.io",
            "idProperty": "email",
            "properties": {"email": "a@x.io", "firstname": "A"},
        },
        {
            "id": "b@x.io",
            "idProperty": "email",
            "properties": {"email": "b@x.io", "firstname": "B"},
        },
        {
            "id": "c@x.io",
            "idProperty": "email",
            "properties": {"email": "c@x.io", "firstname": "C"},
        },
        {"id": "d@x.io", "idProperty": "email", "properties": {"email": "d@x.io"}},
    )
    previous = {
        "22": {"firstname": "Bee"},  # by object id
        "c@x.io": {"firstname": None},  # by the input's unique value
    }
    results = (Result("21", True), Result("22", False), Result("23", False), None)
    entry = make_entry(Op.UPSERT, S.APPLIED, inputs, previous=previous, results=results)
    assert inverse(entry) == [
        ArchiveObjects("contacts", ("21",)),
        RestoreProperties("contacts", "22", {"firstname": "Bee"}, {"firstname": "B"}),
        RestoreProperties("contacts", "23", {"firstname": None}, {"firstname": "C"}),
    ]


def test_upsert_update_without_previous_values_is_unrestorable() -> None:
    inputs = ({"id": "a@x.io", "idProperty": "email", "properties": {"email": "a@x.io"}},)
    entry = make_entry(Op.UPSERT, S.APPLIED, inputs, results=(Result("5", False),))
    assert inverse(entry) == [
        Unrestorable("contacts", ("5",), "previous values were not journaled")
    ]


def test_upsert_whose_created_flag_is_unknown_needs_a_lookup() -> None:
    inputs = ({"id": "a@x.io", "idProperty": "email", "properties": {"email": "a@x.io"}},)
    entry = make_entry(Op.UPSERT, S.APPLIED, inputs, results=(Result("5", None),))
    with pytest.raises(NeedsLookup):
        inverse(entry)


def test_associate_and_dissociate_invert_each_other() -> None:
    inputs = (
        {"from": "1", "to": "10", "toObjectType": "deals"},
        {"from": "2", "to": "20", "toObjectType": "deals"},
        {"from": "1", "to": "30", "toObjectType": "companies"},
    )
    associated = make_entry(Op.ASSOCIATE, S.APPLIED, inputs, results=())
    assert inverse(associated) == [
        Relink("contacts", "deals", (("1", "10"), ("2", "20")), remove=True),
        Relink("contacts", "companies", (("1", "30"),), remove=True),
    ]
    dissociated = make_entry(Op.DISSOCIATE, S.UNKNOWN, inputs[:1])
    assert inverse(dissociated) == [Relink("contacts", "deals", (("1", "10"),), remove=False)]


def test_archive_has_no_inverse() -> None:
    entry = make_entry(Op.ARCHIVE, S.APPLIED, ({"id": "1"},), results=())
    assert inverse(entry) == []


@pytest.mark.parametrize(
    ("held", "wanted"),
    [
        ("ada@x.io", "Ada@X.io"),  # the vendor lower-cases e-mail addresses
        (None, ""),
        (None, None),
        ("2", "2.0"),
        ("0.1", 0.1),
        ("true", True),
        ("2026-01-01T10:00:00.000Z", "2026-01-01 12:00:00+02"),
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("a;b", ["a", "b"]),
    ],
)
def test_values_match_allows_for_vendor_normalisation(held: object, wanted: object) -> None:
    assert values_match(held, wanted)


@pytest.mark.parametrize(
    ("held", "wanted"),
    [
        ("Ada", "Bob"),
        (None, "x"),
        ("x", None),
        ("2", "3"),
        ("false", True),
        ("2026-01-01T10:00:00Z", "2026-01-01T10:00:01Z"),
    ],
)
def test_values_match_tells_different_values_apart(held: object, wanted: object) -> None:
    assert not values_match(held, wanted)


def test_json_objects_compare_by_content_not_key_order() -> None:
    """Stripe's metadata comes back in Stripe's key order, the journal holds jsonb's."""
    assert values_equal({"zz": "1", "a": "2"}, {"a": "2", "zz": "1"})
    assert values_equal({"n": Decimal("1.50")}, {"n": 1.5})
    assert values_equal({}, None)
    assert not values_equal({"a": "2"}, {"a": "2", "zz": "1"})
    assert not values_match({"a": "1"}, {"a": "2"})
