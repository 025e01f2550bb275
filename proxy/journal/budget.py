"""The shared vendor rate budget (``rate_limit_shared = true``): the rolling window of
``proxy.connectors.ratelimit`` kept in the journal's database, so every worker of every
replica pointed at it spends from one budget per vendor account.

One round trip to take a slot (``take_vendor_slot``: an advisory lock per account
orders the takers; PostgreSQL's clock is the one clock they all share) and one to
record the answer; the window's rows are pruned as they expire.
"""

from __future__ import annotations

from .schema import check_schema_name
from .store import Journal


class PostgresBudget:
    """A ``proxy.connectors.ratelimit.RateBudget`` over the journal's pool."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        schema = check_schema_name(journal.schema)
        self._take = f"SELECT slot, wait_s FROM {schema}.take_vendor_slot($1, $2, $3)"
        self._answered = f"UPDATE {schema}.vendor_requests SET at = clock_timestamp() WHERE id = $1"

    async def take(
        self, account: str, max_requests: int, interval_s: float
    ) -> tuple[int | None, float]:
        row = await self._journal.pool.fetchrow(self._take, account, max_requests, interval_s)
        assert row is not None
        slot = row["slot"]
        return (int(slot) if slot is not None else None), float(row["wait_s"])

    async def answered(self, slot: int) -> None:
        await self._journal.pool.execute(self._answered, slot)


__all__ = ["PostgresBudget"]
