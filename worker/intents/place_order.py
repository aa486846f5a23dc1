"""``place_order``: one order for one instrument, sent through the order journal.

The contract is looked up once and the order planned once (kept in the record), then sent as
leg ``order``; a redelivery finds the same order at IB by its orderRef instead of sending a
second one. The result reports the leg as it stands after ``wait_seconds``: ``Filled``,
``Cancelled``, or still working (``Submitted``) for a resting limit order or a closed market.
A rejected order (IB error 201 and friends) is a ``failed`` outcome naming IB's reason.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.errors import IntentFailed, OrderRejected
from worker.intents.base import Context, IntentSpec

LEG = "order"


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
    """Plan (contract lookup) once, send the leg once, report it."""
    if ctx.orders is None:
        raise IntentFailed("place_order needs the order journal")
    plan = ctx.orders.plan(lambda: _plan(ctx, params))
    leg = ctx.orders.place(LEG, plan["contract"], plan["order"])
    if ctx.dry_run:
        return {"dry_run": True, "legs": [leg]}
    [leg] = ctx.orders.settle([LEG], params.wait_seconds)
    if leg.get("rejected"):
        reason = leg.get("reason") or "rejected by IB"
        raise OrderRejected(f"IB {leg.get('error_code')}: {reason}", {"legs": [leg]})
    return {"legs": [leg]}


def _plan(ctx: Context, params: PlaceOrderParams) -> dict[str, Any]:
    spec = {
        "symbol": params.symbol,
        "sec_type": params.sec_type,
        "exchange": params.exchange,
        "currency": params.currency,
        "primary_exchange": params.primary_exchange,
        "last_trade_date": params.last_trade_date,
    }
    contract = ctx.broker.call(lambda gw: gw.contract(spec), ctx.timeout)
    contract["exchange"] = params.exchange  # route as asked, not the listing exchange
    order = {
        "action": params.side,
        "quantity": params.quantity,
        "order_type": params.order_type,
        "limit_price": params.limit_price,
        "tif": params.tif,
    }
    return {"contract": contract, "order": order}


SPEC = IntentSpec(
    name="place_order",
    params=PlaceOrderParams,
    run=run,
    description="One order for one instrument, sent once through the order journal.",
    places_orders=True,
)
