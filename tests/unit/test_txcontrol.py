"""Finding transaction-control statements (proxy.sql.txcontrol)."""

from __future__ import annotations

import pytest

from proxy.sql.txcontrol import TxControl, TxKind, may_control_transaction, transaction_controls


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("COMMIT", [TxControl(0, TxKind.COMMIT)]),
        ("end work", [TxControl(0, TxKind.COMMIT)]),
        ("commit and chain", [TxControl(0, TxKind.COMMIT, chain=True)]),
        ("ABORT", [TxControl(0, TxKind.ROLLBACK)]),
        ("ROLLBACK AND CHAIN", [TxControl(0, TxKind.ROLLBACK, chain=True)]),
        ("savepoint Sp1", [TxControl(0, TxKind.SAVEPOINT, "sp1")]),
        ('SAVEPOINT "Sp 1"', [TxControl(0, TxKind.SAVEPOINT, "Sp 1")]),
        ("ROLLBACK TO a", [TxControl(0, TxKind.ROLLBACK_TO, "a")]),
        ("rollback to savepoint A", [TxControl(0, TxKind.ROLLBACK_TO, "a")]),
        ("RELEASE SAVEPOINT a", [TxControl(0, TxKind.RELEASE, "a")]),
        ("release a", [TxControl(0, TxKind.RELEASE, "a")]),
        ("PREPARE TRANSACTION 'x'", [TxControl(0, TxKind.PREPARE)]),
        (
            "SELECT 1; SAVEPOINT a; INSERT INTO t VALUES (1); ROLLBACK TO a",
            [TxControl(1, TxKind.SAVEPOINT, "a"), TxControl(3, TxKind.ROLLBACK_TO, "a")],
        ),
        ("SELECT 'commit'", []),
        ("SELECT * FROM sender WHERE x = 'END'", []),
        ("COMMIT garbage (", []),  # does not parse: PostgreSQL runs none of it
        ("", []),
    ],
)
def test_transaction_controls(sql: str, expected: list[TxControl]) -> None:
    assert list(transaction_controls(sql)) == expected


def test_ends_transaction() -> None:
    assert TxControl(0, TxKind.COMMIT).ends_transaction
    assert TxControl(0, TxKind.PREPARE).ends_transaction
    assert not TxControl(0, TxKind.ROLLBACK_TO, "a").ends_transaction


@pytest.mark.parametrize(
    ("sql", "maybe"),
    [
        ("COMMIT", True),
        ("  -- note\n  rollback to a", True),
        ("/* c */ RELEASE a", True),
        ("END", True),
        ("SELECT 1", False),
        ("committed", False),
        ("INSERT INTO t VALUES ('commit')", False),
        ("BEGIN", True),  # the client's own block, noted in a pipeline
        ("start transaction", True),
        ("started", False),
    ],
)
def test_may_control_transaction(sql: str, maybe: bool) -> None:
    assert may_control_transaction(sql) is maybe
