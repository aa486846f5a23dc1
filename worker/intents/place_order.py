"""``place_order``: one order for one instrument, sent through the order journal.

The contract is looked up and priced once and the order planned once (kept in the record),
checked by the risk gate (``worker/risk.py``: limits, market hours, IB's reset windows; a dry
run reports every check), then sent as leg ``order``; a redelivery finds the same order at IB
by its orderRef instead of sending a second one. The result reports the leg as it stands after
``wait_seconds``: ``Filled``, ``Cancelled``, or still working (``Submitted``) for a resting
limit order.
A rejected order (IB error 201 and friends) is a ``failed`` outcome naming IB's reason.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.errors import IntentFailed, OrderRejected
from worker.intents import trading
from worker.intents.base import Context, IntentSpec
from worker.risk import RiskGate

LEG = "order"
REPORTED = ("price", "price_source", "market_data_type", "market_data_fallback")


class PlaceOrderParams(BaseModel):
    """Parameters of ``place_order``."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=32, description="IB symbol, e.g. SPY or EUR.")
    sec_type: Literal["STK", "CASH", "FUT", "IND", "CFD"] = Field(
        "STK", description="IB security type."
    )
    exchange: str = Field("SMART", max_length=32, description="Routing exchange.")
    currency: str = Field("USD", min_length=3, max_length=3, description="Contract currency.")
    primary_exchange: str = Field("", max_length=32, description="Disambiguates stocks.")
    last_trade_date: str = Field("", max_length=16, description="Futures: YYYYMM[DD].")
    side: Literal["BUY", "SELL"] = Field(description="Order action.")
    quantity: float = Field(gt=0, le=1e9, description="Units to buy or sell (> 0).")
    order_type: Literal["MKT", "LMT"] = Field("MKT", description="Market or limit.")
    limit_price: float | None = Field(None, gt=0, description="Required for LMT.")
    tif: Literal["DAY", "GTC", "IOC"] = Field("DAY", description="Time in force.")
    wait_seconds: float = Field(
        10.0, ge=0, le=120, description="How long to wait for a terminal state before reporting."
    )

    @model_validator(mode="after")
    def _limit_needs_price(self) -> PlaceOrderParams:
        if (self.order_type == "LMT") != (self.limit_price is not None):
            raise ValueError("limit_price is required for LMT orders and only for them")
        return self


def run(ctx: Context, params: PlaceOrderParams) -> dict[str, Any]:
    """Plan once (contract, price), pass the risk gate, send the leg once, report it."""
    if ctx.orders is None:
        raise IntentFailed("place_order needs the order journal")
    config = trading.rules(ctx)
    plan = ctx.orders.plan(lambda: _plan(ctx, params, config.market_data_type))
    view = trading.order_view(plan["contract"], plan["order"], plan["price"])
    gate, account = RiskGate(config.risk), trading.account_view(ctx)
    checks = gate.order_checks(view, account) + gate.plan_checks([view], account)
    report = {k: plan.get(k) for k in REPORTED}  # .get: plans recorded before a key existed
    report["checks"] = [c.as_dict() for c in checks]
    leg = ctx.orders.place(
        LEG, plan["contract"], plan["order"], approve=lambda: gate.enforce(checks)
    )
    if ctx.dry_run:
        return {"dry_run": True, "legs": [leg], **report}
    [leg] = ctx.orders.settle([LEG], params.wait_seconds)
    if leg.get("rejected"):
        reason = leg.get("reason") or "rejected by IB"
        raise OrderRejected(f"IB {leg.get('error_code')}: {reason}", {"legs": [leg]})
    return {"legs": [leg], **report}


def _plan(ctx: Context, params: PlaceOrderParams, data_type: int) -> dict[str, Any]:
    spec = {
        "symbol": params.symbol,
        "sec_type": params.sec_type,
        "exchange": params.exchange,
        "currency": params.currency,
        "primary_exchange": params.primary_exchange,
        "last_trade_date": params.last_trade_date,
    }
    contract = trading.contract(ctx, spec)
    contract["exchange"] = params.exchange  # route as asked, not the listing exchange
    price, source, quote = params.limit_price, "limit", {}
    if price is None:
        quote = trading.quote(ctx, contract, data_type)
        price, source = trading.price_or_fail(quote, params.symbol)
    order = {
        "action": params.side,
        "quantity": params.quantity,
        "order_type": params.order_type,
        "limit_price": params.limit_price,
        "tif": params.tif,
    }
    return {
        "contract": contract,
        "order": order,
        "price": price,
        "price_source": source,
        **trading.data_used(quote),
    }


SPEC = IntentSpec(
    name="place_order",
    params=PlaceOrderParams,
    run=run,
    description="One order for one instrument, sent once through the order journal.",
    places_orders=True,
)
