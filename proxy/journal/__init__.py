"""The durable write journal and its recovery (DESIGN 4.3, issue 8).

Every vendor call a synced write makes inside a client transaction is journaled in
the upstream database before it is sent (``Journal.record_intent``), its answer
afterwards (``record_outcome``); ``Resolver`` decides each entry by PostgreSQL's
verdict on the transaction (``pg_xact_status``) and compensates what did not commit;
``RecoveryLoop`` does that at startup and periodically.
"""

from .hooks import JournalHooks, previous_for
from .inverse import (
    ArchiveObjects,
    InverseCall,
    Relink,
    RestoreProperties,
    Unrestorable,
    inverse,
)
from .model import Action, Entry, EntryState, Result, Verdict, decide, outcome_of
from .recovery import RecoveryLoop
from .resolver import Outcome, Report, Resolver
from .schema import DEFAULT_SCHEMA, JournalSetupError, check_schema_name, ensure_schema
from .store import Journal, JournalError

__all__ = [
    "DEFAULT_SCHEMA",
    "Action",
    "ArchiveObjects",
    "Entry",
    "EntryState",
    "InverseCall",
    "Journal",
    "JournalError",
    "JournalHooks",
    "JournalSetupError",
    "Outcome",
    "RecoveryLoop",
    "Relink",
    "Report",
    "Resolver",
    "RestoreProperties",
    "Result",
    "Unrestorable",
    "Verdict",
    "check_schema_name",
    "decide",
    "ensure_schema",
    "inverse",
    "outcome_of",
    "previous_for",
]
