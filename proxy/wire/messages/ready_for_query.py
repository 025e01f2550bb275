"""ReadyForQuery ('Z'): its one-byte status tells whether the session is idle ('I'),
in a transaction block ('T') or in a failed one ('E')."""

from __future__ import annotations

IDLE = ord("I")
IN_TRANSACTION = ord("T")
FAILED_TRANSACTION = ord("E")
