"""Allocation arithmetic, pure: from strategies' weights to one order per instrument.

exposure(strategy) = NetLiquidation x exposure.overall x share(strategy)          (base ccy)
target(strategy, instrument) = weight x exposure / (price x multiplier x FX to base),
                               rounded toward zero to the instrument's size increment
delta = target - holdings(strategy) - in-flight(strategy)   (our open orders for it)
one order per instrument = the sum of the strategies' deltas; opposite deltas cross
internally (``holdings.net_and_cross``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from worker.holdings import net_and_cross


@dataclass(frozen=True)
class Priced:
    """One instrument ready to be sized: its qualified contract and the price used."""

    key: str
    contract: dict[str, Any]
    price: float
    price_source: str
    fx: float  # base currency per unit of the contract's currency
    market_data: dict[str, Any] = field(default_factory=dict)  # trading.data_used of the quote

    @property
    def con_id(self) -> int:
        return int(self.contract["con_id"])

    @property
    def unit_value(self) -> float:
        """Base-currency value of one unit (price x multiplier x FX)."""
        return self.price * float(self.contract.get("multiplier") or 1.0) * self.fx

    @property
    def increment(self) -> float:
        return float(self.contract.get("size_increment") or 1.0)


@dataclass
class Book:
    """What the plan knows per strategy: targets, holdings, in-flight, deltas (by conId)."""

    targets: dict[str, dict[int, float]] = field(default_factory=dict)
    holdings: dict[str, dict[int, float]] = field(default_factory=dict)
    inflight: dict[str, dict[int, float]] = field(default_factory=dict)
    deltas: dict[str, dict[int, float]] = field(default_factory=dict)


def round_toward_zero(quantity: float, increment: float) -> float:
    """``quantity`` rounded toward zero to a multiple of ``increment``."""
    steps = math.trunc(quantity / increment + 1e-9 * math.copysign(1, quantity))
    return round(steps * increment, 10)


def target_quantity(weight: float, exposure: float, instrument: Priced) -> float:
    if instrument.unit_value <= 0:
        raise ValueError(f"{instrument.key}: no positive price to size with")
    return round_toward_zero(weight * exposure / instrument.unit_value, instrument.increment)


def deltas(book: Book, strategy: str, targets: dict[int, float]) -> dict[int, float]:
    """Per instrument: target minus what the strategy holds and has in flight."""
    held = book.holdings.get(strategy, {})
    flying = book.inflight.get(strategy, {})
    return {c: t - held.get(c, 0.0) - flying.get(c, 0.0) for c, t in targets.items()}


def consolidate(book: Book, priced: dict[int, Priced]) -> list[dict[str, Any]]:
    """One order per instrument whose net delta is at least one increment."""
    orders = []
    for con_id, instrument in sorted(priced.items()):
        wanted = {s: d[con_id] for s, d in book.deltas.items() if d.get(con_id)}
        net, shares, cross = net_and_cross(wanted)
        quantity = round_toward_zero(abs(net), instrument.increment)
        if quantity <= 0 and not cross:
            continue
        orders.append(
            {
                "con_id": con_id,
                "action": "BUY" if net > 0 else "SELL",
                "quantity": quantity,
                "shares": {s: round(q, 10) for s, q in shares.items()},
                "cross": {s: round(q, 10) for s, q in cross.items()},
            }
        )
    return orders


def collar_price(price: float, action: str, collar_bps: float, tick: float | None) -> float:
    """A limit price ``collar_bps`` through the quote, on the tick grid, never better than it
    would fill at (buys round up, sells round down)."""
    raw = price * (1 + collar_bps / 10_000 if action == "BUY" else 1 - collar_bps / 10_000)
    tick = tick or 0.01
    steps = math.ceil(raw / tick - 1e-9) if action == "BUY" else math.floor(raw / tick + 1e-9)
    return round(steps * tick, 10)
