"""The guard's key (``proxy.guard``): how the write path computes the token that lets
one statement of its own write one synced table. A module of its own because the
synced-table catalog carries the key to the workers and must not import the guard's
installation code."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GuardKey:
    """What the write path needs to pass the guard: the secret, each synced table's
    oid (by qualified name) and the server's encoding (``current_query()`` is hashed
    as the server holds it)."""

    secret: str = ""
    oids: Mapping[str, int] = field(default_factory=dict)
    server_encoding: str = "utf-8"

    def token(self, table: str, sql: str, rows: str = "") -> str:
        """The token that authorises exactly ``sql`` to write ``table`` — only the rows
        whose ids ``rows`` lists (a JSON array; empty: any row, for the rolled-back dry
        run)."""
        query = hashlib.md5(sql.encode(self.server_encoding, "surrogateescape")).hexdigest()
        scope = hashlib.md5(rows.encode()).hexdigest()
        oid = self.oids.get(table, 0)
        return hashlib.md5(f"{self.secret}:{oid}:{query}:{scope}".encode()).hexdigest()
