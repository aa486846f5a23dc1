"""``close_all``: cancel our open orders, wait until IB confirms every cancel, then flatten.

Cancelling first and waiting matters: a working order that fills while the positions are read
would leave the account short or long after the "flatten" (the earlier system's race). The
positions are read afresh only after every cancel is confirmed, and flattened with one market
order each (leg ``close-<conId>``), all sent before any is awaited. Only the positions named
in ``symbols`` are closed, or every position with ``all_positions=true``: nothing is closed by
default. Runs with the kill switch on; market hours and IB's reset windows still apply (a
closed market refuses or skips the whole intent, per ``risk.when_closed``), the size limits do
not (closing only reduces exposure). Needs an Idempotency-Key on direct calls.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.errors import IntentFailed
from worker.intents import trading
from worker.intents.base import Context, IntentSpec
from worker.intents.cancel_orders import ours
from worker.risk import RiskGate


class CloseAllParams(BaseModel):
    """Parameters of ``close_all``."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[str] = Field(default_factory=list, max_length=500, description="To close.")
    all_positions: bool = Field(False, description="Close every position of the account.")
    cancel_orders: bool = Field(True, description="Cancel our open orders first (and wait).")
    tif: str = Field("DAY", pattern="^(DAY|GTC|IOC)$")
    wait_seconds: float = Field(30.0, gt=0, le=300, description="For cancels, then for fills.")

    @model_validator(mode="after")
    def _something_selected(self) -> CloseAllParams:
        if not (self.symbols or self.all_positions):
            raise ValueError("name the positions: symbols=[...] or all_positions=true")
        return self


def run(ctx: Context, params: CloseAllParams) -> dict[str, Any]:
    """Cancel (and await), then read positions afresh, plan once, flatten, await the fills."""
    if ctx.orders is None:
        raise IntentFailed("close_all needs the order journal")
    cancelled: list[dict[str, Any]] = []
    if params.cancel_orders:
        chosen = [o for o in ours(ctx) if _wanted(o, params)]
        cancelled = ctx.orders.cancel(chosen, params.wait_seconds)
    plan = ctx.orders.plan(lambda: _plan(ctx, params))
    gate = RiskGate(trading.rules(ctx).risk)
    now = ctx.broker.call(lambda gw: gw.now(), ctx.timeout)
    checks = [c for leg in plan["legs"] for c in gate.time_checks(leg["sec_type"], now, leg["id"])]
    report = {"cancelled": cancelled, "checks": [c.as_dict() for c in checks]}
    if ctx.dry_run:
        return {"dry_run": True, "plan": plan["legs"], **report}
    gate.enforce(checks)  # before anything is sent: all legs or none
    for leg in plan["legs"]:
        ctx.orders.place(leg["id"], leg["contract"], leg["order"])
    legs = ctx.orders.settle([leg["id"] for leg in plan["legs"]], params.wait_seconds)
    return {"legs": legs, **report}


def _wanted(item: dict[str, Any], params: CloseAllParams) -> bool:
    return params.all_positions or item.get("symbol") in params.symbols


def _plan(ctx: Context, params: CloseAllParams) -> dict[str, Any]:
    positions = ctx.broker.call(lambda gw: gw.positions(ctx.account), ctx.timeout)
    legs = []
    for position in (p for p in positions if _wanted(p, params)):
        contract = trading.contract(ctx, {"con_id": position["con_id"]})
        if contract["sec_type"] in ("STK", "ETF"):
            contract["exchange"] = "SMART"  # route smartly rather than to the listing venue
        quantity = abs(position["position"])
        action = "SELL" if position["position"] > 0 else "BUY"
        order = {"action": action, "quantity": quantity, "order_type": "MKT", "tif": params.tif}
        leg_id = f"close-{position['con_id']}"
        legs.append(
            {"id": leg_id, "contract": contract, "order": order, "sec_type": contract["sec_type"]}
        )
    return {"legs": legs}


SPEC = IntentSpec(
    name="close_all",
    params=CloseAllParams,
    run=run,
    description="Cancel our open orders (awaited), then flatten the named positions.",
    places_orders=True,
    reduces_risk=True,
)
