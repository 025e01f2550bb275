"""Find the transaction-control statements in a SQL text (COMMIT, ROLLBACK, SAVEPOINT,
RELEASE, ROLLBACK TO, PREPARE TRANSACTION).

Only sessions whose transaction has made vendor API changes ask this (see
``proxy.writes.ledger``): they must know when a savepoint their changes were made
under is rolled back, and run deferred archives before the COMMIT. Every other session
never pays for it. A keyword prefilter clears almost every text; pglast decides the rest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pglast.parser import ParseError, parse_sql_json

_KEYWORDS: Final = re.compile(
    r"(?i)begin|start|commit|end|rollback|abort|savepoint|release|prepare"
)
#: A single statement (extended protocol) that may be transaction control: it starts,
#: after blanks and comments, with one of the keywords.
_LEADING: Final = re.compile(
    r"(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
    r"(?:begin|start|commit|end|rollback|abort|savepoint|release|prepare)\b",
    re.IGNORECASE | re.DOTALL,
)


class TxKind(StrEnum):
    BEGIN = "begin"
    COMMIT = "commit"  # also END
    ROLLBACK = "rollback"  # also ABORT
    SAVEPOINT = "savepoint"
    RELEASE = "release"
    ROLLBACK_TO = "rollback_to"
    PREPARE = "prepare"  # PREPARE TRANSACTION: the verdict comes with COMMIT PREPARED


_KINDS: Final = {
    "TRANS_STMT_BEGIN": TxKind.BEGIN,
    "TRANS_STMT_START": TxKind.BEGIN,
    "TRANS_STMT_COMMIT": TxKind.COMMIT,
    "TRANS_STMT_ROLLBACK": TxKind.ROLLBACK,
    "TRANS_STMT_SAVEPOINT": TxKind.SAVEPOINT,
    "TRANS_STMT_RELEASE": TxKind.RELEASE,
    "TRANS_STMT_ROLLBACK_TO": TxKind.ROLLBACK_TO,
    "TRANS_STMT_PREPARE": TxKind.PREPARE,
}


@dataclass(frozen=True, slots=True)
class TxControl:
    """One transaction-control statement: its position in the text and its meaning."""

    index: int  # which statement of the text (0-based)
    kind: TxKind
    savepoint: str | None = None  # as PostgreSQL folds the name
    chain: bool = False  # COMMIT/ROLLBACK AND CHAIN: a new transaction starts at once

    @property
    def ends_transaction(self) -> bool:
        return self.kind in (TxKind.COMMIT, TxKind.ROLLBACK, TxKind.PREPARE)


def may_control_transaction(sql: str) -> bool:
    """Cheap test for one statement's text (a Parse): could it be transaction control?"""
    return _LEADING.match(sql) is not None


def transaction_controls(sql: str) -> tuple[TxControl, ...]:
    """The transaction-control statements of ``sql``, in order (empty when none, or
    when the text does not parse: PostgreSQL then runs none of it)."""
    if _KEYWORDS.search(sql) is None:
        return ()
    try:
        tree = json.loads(parse_sql_json(sql))
    except ParseError:
        return ()
    found = []
    for index, raw in enumerate(tree.get("stmts", ())):
        node = raw.get("stmt", {}).get("TransactionStmt")
        if node is None:
            continue
        kind = _KINDS.get(node.get("kind", ""))
        if kind is not None:
            found.append(
                TxControl(index, kind, node.get("savepoint_name"), bool(node.get("chain")))
            )
    return tuple(found)
