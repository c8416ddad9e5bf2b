"""Keeps the pre-aggregated scorecard counters and the lost items in step with the scored
items.

A change is an item's shares before and after it (scoring.py); the ledger adds up the counter
deltas of a transaction and writes them at its end, in key order, so that the event handler and
the delivery aggregator lock counter rows in the same order and cannot deadlock each other."""

from __future__ import annotations

from collections import Counter
from datetime import date

import asyncpg

from services.evaluation.scoring import COUNTERS, ItemRef, Share

_UPSERT = (
    f"INSERT INTO score_counters (subject_kind, month, unit_id, {', '.join(COUNTERS)},"
    " changed, changed_by_regulation)"
    f" VALUES ($1, $2, $3, {', '.join(f'${i + 4}' for i in range(len(COUNTERS)))}, true,"
    f" ${len(COUNTERS) + 4})"
    " ON CONFLICT (subject_kind, month, unit_id) DO UPDATE SET "
    + ", ".join(f"{c} = score_counters.{c} + EXCLUDED.{c}" for c in COUNTERS)
    + ", changed = true, changed_by_regulation = EXCLUDED.changed_by_regulation")
_LOST_COLUMNS = ("item_key, component, subject_kind, unit_id, month, severity, at,"
                 " regulation_id, task_id, item_id, owner_org_id, reason")


def _losses(shares: list[Share]) -> list:
    return [(s.kind, s.unit_id, s.at, loss) for s in shares for loss in s.losses]


class Ledger:
    """The scored changes of one transaction."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._deltas: dict[tuple[int, date, str], Counter] = {}
        self._changed_by: dict[tuple[int, date, str], str] = {}
        self._lost: dict[str, tuple[ItemRef, list[Share]]] = {}

    def change(self, ref: ItemRef, before: list[Share], after: list[Share]) -> None:
        for sign, shares in ((-1, before), (1, after)):
            for share in shares:
                key = (share.kind, share.month, share.unit_id)
                delta = self._deltas.setdefault(key, Counter())
                for name, amount in share.counters.items():
                    delta[name] += sign * amount
                delta["lost_items"] += sign * len(share.losses)
                self._changed_by[key] = ref.regulation_id
        if _losses(before) != _losses(after):
            self._lost[ref.key] = (ref, after)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Writes what was collected, in the caller's transaction, and starts afresh."""
        if self._lost:
            await conn.execute("DELETE FROM lost_items WHERE item_key = ANY($1::text[])",
                               list(self._lost))
            rows = [(ref.key, loss.component, share.kind, share.unit_id, share.month,
                     loss.severity, share.at, ref.regulation_id, ref.task_id, ref.item_id,
                     ref.owner_org_id, loss.reason)
                    for ref, shares in self._lost.values() for share in shares
                    for loss in share.losses]
            if rows:
                await conn.executemany(
                    f"INSERT INTO lost_items ({_LOST_COLUMNS}) VALUES"
                    " ($1, $2, $3, $4, $5, $6, $7, $8, $9::uuid, $10, $11, $12)", rows)
        changes = [(*key, *(delta[name] for name in COUNTERS), self._changed_by[key])
                   for key, delta in sorted(self._deltas.items()) if any(delta.values())]
        if changes:
            await conn.executemany(_UPSERT, changes)
        self._reset()
