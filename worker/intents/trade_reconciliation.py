"""``trade_reconciliation``: book today's executions to the strategies, compare with the broker.

Executions are asked afresh (reqExecutions, so fills made while the worker was disconnected are
seen) and each one whose orderRef is one of ours is split over the strategies that order
serves (``holdings.py``) and booked once, by its execId, however often it is seen. Orders that
were cancelled or rejected have no executions, so nothing of theirs is ever booked; partial
fills are booked as they come. Differences between the sum of the strategies' holdings and the
broker's positions are reported per conId (ours, the broker's, unattributed), never raised.
The result's ``executions`` and ``blotter`` (position and realized P&L per strategy per
instrument for the day) also go to BigQuery (``executions`` by execId, ``blotter``).
Read-only at the broker: it runs with the kill switch on.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worker.errors import IntentFailed
from worker.holdings import book_executions
from worker.intents.base import Context, IntentSpec

EPSILON = 1e-6


class ReconciliationParams(BaseModel):
    """Parameters of ``trade_reconciliation``."""

    model_config = ConfigDict(extra="forbid")

    strategies: list[str] = Field(
        default_factory=list, max_length=50, description="Limit the blotter; default all."
    )


def run(ctx: Context, params: ReconciliationParams) -> dict[str, Any]:
    """Book, compare, report."""
    if ctx.books is None:
        raise IntentFailed("trade_reconciliation needs the strategy books")
    fills = ctx.broker.call(lambda gw: gw.executions(ctx.account), ctx.timeout)
    booked, unattributed, rows = book_executions(ctx.books, fills, ctx.key)
    holdings = ctx.books.holdings(params.strategies or None)
    positions = ctx.broker.call(lambda gw: gw.positions(ctx.account), ctx.timeout)
    return {
        "booked": booked,
        "executions": rows,
        "unattributed_executions": unattributed,
        "differences": differences(ctx.books.holdings(), positions),
        "blotter": blotter(holdings, rows, positions),
    }


def differences(
    holdings: dict[str, dict[int, float]], positions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per conId where the strategies' holdings and the broker's position disagree."""
    ours: dict[int, float] = defaultdict(float)
    for by_con in holdings.values():
        for con_id, quantity in by_con.items():
            ours[con_id] += quantity
    broker = {int(p["con_id"]): (p["position"], p.get("symbol", "")) for p in positions}
    found = []
    for con_id in sorted(set(ours) | set(broker)):
        theirs, symbol = broker.get(con_id, (0.0, ""))
        mine = ours.get(con_id, 0.0)
        if abs(theirs - mine) > EPSILON:
            row = {"con_id": con_id, "symbol": symbol, "ours": mine, "broker": theirs}
            found.append({**row, "unattributed": theirs - mine})
    return found


def blotter(
    holdings: dict[str, dict[int, float]],
    executions: list[dict[str, Any]],
    positions: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Position, today's realized P&L and commission per strategy and instrument."""
    symbols = {int(p["con_id"]): p.get("symbol", "") for p in positions}
    pnl: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in executions:
        total = sum(abs(q) for q in row["strategies"].values()) or 1.0
        symbols.setdefault(int(row["con_id"]), row.get("symbol", ""))
        for strategy, quantity in row["strategies"].items():
            part = abs(quantity) / total
            pnl[(strategy, int(row["con_id"]))][0] += (row.get("realized_pnl") or 0.0) * part
            pnl[(strategy, int(row["con_id"]))][1] += (row.get("commission") or 0.0) * part
    keys = {(s, c) for s, by_con in holdings.items() for c in by_con} | set(pnl)
    return [
        {
            "strategy": strategy,
            "con_id": con_id,
            "symbol": symbols.get(con_id, ""),
            "position": holdings.get(strategy, {}).get(con_id, 0.0),
            "realized_pnl": round(pnl[(strategy, con_id)][0], 6),
            "commission": round(pnl[(strategy, con_id)][1], 6),
        }
        for strategy, con_id in sorted(keys)
        if strategy in holdings
    ]


SPEC = IntentSpec(
    name="trade_reconciliation",
    params=ReconciliationParams,
    run=run,
    description="Book today's executions to the strategies once each; report differences.",
)
