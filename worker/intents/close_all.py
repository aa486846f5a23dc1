"""``close_all``: cancel our open orders, wait until IB confirms every cancel, then flatten.

Cancelling first and waiting matters: a working order that fills while the positions are read
would leave the account short or long after the "flatten" (the earlier system's race). The
positions are read afresh only after every cancel is confirmed, and flattened with one market
order each (leg ``close-<conId>``), all sent before any is awaited. Only what is named is
closed: the positions in ``symbols``, what the ``strategies`` hold (their part only, never
more than the broker holds on that side), or every position with ``all_positions=true``;
positions no strategy owns close only when listed or with ``all_positions``. Fills are booked
back to the strategies' holdings. Runs with the kill switch on; market hours and IB's reset
windows still apply (a closed market refuses or skips the whole intent, per
``risk.when_closed``), the size limits do not (closing only reduces exposure). Needs an
Idempotency-Key on direct calls.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.errors import IntentFailed
from worker.holdings import UNATTRIBUTED, Books
from worker.intents import trading
from worker.intents.base import Context, IntentSpec
from worker.intents.cancel_orders import ours
from worker.risk import RiskGate


class CloseAllParams(BaseModel):
    """Parameters of ``close_all``."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[str] = Field(default_factory=list, max_length=500, description="To close.")
    strategies: list[str] = Field(
        default_factory=list, max_length=50, description="Close what these strategies hold."
    )
    all_positions: bool = Field(False, description="Close every position of the account.")
    cancel_orders: bool = Field(True, description="Cancel our open orders first (and wait).")
    tif: str = Field("DAY", pattern="^(DAY|GTC|IOC)$")
    wait_seconds: float = Field(30.0, gt=0, le=300, description="For cancels, then for fills.")

    @model_validator(mode="after")
    def _something_selected(self) -> CloseAllParams:
        if not (self.symbols or self.strategies or self.all_positions):
            raise ValueError("name the positions: symbols, strategies, or all_positions=true")
        return self


def run(ctx: Context, params: CloseAllParams) -> dict[str, Any]:
    """Cancel (and await), then read positions afresh, plan once, flatten, await the fills."""
    if ctx.orders is None or ctx.books is None:
        raise IntentFailed("close_all needs the order journal and the strategy books")
    books = ctx.books
    cancelled: list[dict[str, Any]] = []
    if params.cancel_orders:
        chosen = [o for o in ours(ctx) if _wanted_order(o, params, books)]
        cancelled = ctx.orders.cancel(chosen, params.wait_seconds)
    plan = ctx.orders.plan(lambda: _plan(ctx, books, params))
    gate = RiskGate(trading.rules(ctx).risk)
    now = ctx.broker.call(lambda gw: gw.now(), ctx.timeout)
    checks = [c for leg in plan["legs"] for c in gate.time_checks(leg["sec_type"], now, leg["id"])]
    report = {"cancelled": cancelled, "checks": [c.as_dict() for c in checks]}
    if ctx.dry_run:
        return {"dry_run": True, "plan": plan["legs"], **report}
    gate.enforce(checks)  # before anything is sent: all legs or none
    for leg in plan["legs"]:
        books.register_order(ctx.orders.order_ref(leg["id"]), leg["shares"], key=ctx.key)
        ctx.orders.place(leg["id"], leg["contract"], leg["order"])
    legs = ctx.orders.settle([leg["id"] for leg in plan["legs"]], params.wait_seconds)
    result = {"legs": legs, "booked": trading.book_fills(ctx, books, legs), **report}
    trading.fail_if_incomplete(result)
    return result


def _wanted_order(order: dict[str, Any], params: CloseAllParams, books: Books) -> bool:
    if params.all_positions or order.get("symbol") in params.symbols:
        return True
    shares = books.order_shares(order["order_ref"]) if params.strategies else None
    return bool(shares and set(shares) & set(params.strategies))


def _plan(ctx: Context, books: Books, params: CloseAllParams) -> dict[str, Any]:
    positions = ctx.broker.call(lambda gw: gw.positions(ctx.account), ctx.timeout)
    held = books.holdings()
    legs = []
    for position in positions:
        whole = params.all_positions or position.get("symbol") in params.symbols
        quantity, shares = _to_close(position, held, params.strategies, whole)
        if quantity:
            legs.append(_leg(ctx, position, quantity, shares, params))
    return {"legs": legs}


def _to_close(
    position: dict[str, Any],
    held: dict[str, dict[int, float]],
    strategies: list[str],
    whole: bool,
) -> tuple[float, dict[str, float]]:
    """How much of a position to close (signed, as the order) and whose holdings it unwinds.

    A whole position closes every strategy's part and the unattributed rest; otherwise only
    the named strategies' parts, never more than the broker holds on their side.
    """
    con_id, size = int(position["con_id"]), float(position["position"])
    parts = {s: by_con[con_id] for s, by_con in held.items() if by_con.get(con_id)}
    if not whole:
        parts = {s: q for s, q in parts.items() if s in strategies and q * size > 0}
        wanted = sum(parts.values())
        scale = min(1.0, abs(size) / abs(wanted)) if wanted else 0.0
        return -wanted * scale, {s: -q * scale for s, q in parts.items()}
    shares = {s: -q for s, q in parts.items()}
    rest = -size - sum(shares.values())
    if abs(rest) > 1e-9:
        shares[UNATTRIBUTED] = rest
    return -size, shares


def _leg(
    ctx: Context,
    position: dict[str, Any],
    signed: float,
    shares: dict[str, float],
    params: CloseAllParams,
) -> dict[str, Any]:
    contract = trading.contract(ctx, {"con_id": position["con_id"]})
    if contract["sec_type"] in ("STK", "ETF"):
        contract["exchange"] = "SMART"  # route smartly rather than to the listing venue
    action = "BUY" if signed > 0 else "SELL"
    order = {"action": action, "quantity": abs(signed), "order_type": "MKT", "tif": params.tif}
    leg_id = f"close-{position['con_id']}"
    return {
        "id": leg_id,
        "contract": contract,
        "order": order,
        "shares": shares,
        "sec_type": contract["sec_type"],
    }


SPEC = IntentSpec(
    name="close_all",
    params=CloseAllParams,
    run=run,
    description="Cancel our open orders (awaited), then flatten the named positions.",
    places_orders=True,
    reduces_risk=True,
)
