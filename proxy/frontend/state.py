"""The protocol state a session's relay and interceptor share: where the upstream
conversation stands, and which of the client's prepared statements and portals may
write a synced table."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.backend.expected import ExpectedReplies
from proxy.sql.classifier import Classification
from proxy.sql.txcontrol import TxControl
from proxy.wire.messages.bind import Bind
from proxy.wire.messages.ready_for_query import IDLE
from proxy.writes.ledger import TxLedger


@dataclass
class Conversation:
    """Where the upstream conversation stands."""

    #: ReadyForQuery's last status: idle, in a block, in a failed block.
    tx_status: int = IDLE
    #: Sync/Query/FunctionCall messages relayed and not yet answered by ReadyForQuery.
    pending_syncs: int = 0
    #: Replies owed for messages relayed since the last Sync.
    expected: ExpectedReplies = field(default_factory=ExpectedReplies)
    #: The client sent Terminate: the upstream closing is no error.
    terminating: bool = False
    #: The Python codec of the session's client_encoding (None: one the proxy cannot
    #: read; synced writes are then refused).
    encoding: str | None = "utf-8"


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    """A prepared statement whose text may write a synced table, or control the
    transaction of a session whose transaction made vendor changes."""

    query: str
    classification: Classification
    param_types: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class BoundWrite:
    statement: PreparedWrite
    bind: Bind


@dataclass
class SyncedState:
    """Per-session state of the synced-write machinery (only when tables are synced)."""

    statements: dict[str, PreparedWrite] = field(default_factory=dict)
    portals: dict[str, BoundWrite] = field(default_factory=dict)
    #: Synced-write portals already run, with the tag another Execute of them answers
    #: (PostgreSQL runs a portal once: again, it does nothing, e.g. "INSERT 0 0").
    done_portals: dict[str, str] = field(default_factory=dict)
    #: Prepared statements and portals that control the transaction (COMMIT, ROLLBACK
    #: TO ...): handled by the interceptor only while the transaction has vendor changes.
    controls: dict[str, tuple[TxControl, ...]] = field(default_factory=dict)
    control_portals: dict[str, tuple[TxControl, ...]] = field(default_factory=dict)
    #: After an error in the extended protocol, messages are ignored until Sync.
    skip_until_sync: bool = False
    #: The session ran DDL that may create, rename or drop a synced table, view or rule:
    #: the catalog is read again once its transaction has ended.
    catalog_changed: bool = False
    ledger: TxLedger = field(default_factory=TxLedger)

    def forget(self, target: int, name: str) -> None:
        """A Close of a statement (``target`` 'S') or portal ('P'): forget it."""
        if target == ord("S"):
            self.statements.pop(name, None)
            self.controls.pop(name, None)
        else:
            self.portals.pop(name, None)
            self.done_portals.pop(name, None)
            self.control_portals.pop(name, None)
