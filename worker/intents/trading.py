"""What every order-placing intent reads before it plans: the trading rules, the account as
the risk gate sees it, contracts and prices. Plain data in, plain data out."""

from __future__ import annotations

from typing import Any

from worker.config import TradingRules, trading_rules
from worker.errors import Incomplete, NoPrice
from worker.holdings import Books, book_executions
from worker.intents.base import Context
from worker.risk import AccountView, OrderView

QUOTE_SECONDS = 3.0


def rules(ctx: Context) -> TradingRules:
    """The validated trading config of this run (ConfigInvalid when it does not validate)."""
    return trading_rules(ctx.config())


def account_view(ctx: Context) -> AccountView:
    """The account as the risk gate judges it, at the gateway's current time."""
    view = ctx.broker.call(lambda gw: gw.account_view(ctx.account), ctx.timeout)
    now = ctx.broker.call(lambda gw: gw.now(), ctx.timeout)
    return AccountView(now=now, **view)


def contract(ctx: Context, spec: dict[str, Any]) -> dict[str, Any]:
    """The one contract ``spec`` names, qualified by IB (ContractNotFound otherwise)."""
    return ctx.broker.call(lambda gw: gw.contract(spec), ctx.timeout)


def quote(ctx: Context, qualified: dict[str, Any], data_type: int) -> dict[str, Any]:
    """A fresh quote of ``qualified``: delayed data when IB says live data is not subscribed,
    the type used and IB's reason in ``market_data_type`` and ``fallback`` (Gateway.quote)."""
    return ctx.broker.call(
        lambda gw: gw.quote(qualified, data_type, QUOTE_SECONDS), ctx.timeout + 2 * QUOTE_SECONDS
    )


def data_used(quote_: dict[str, Any]) -> dict[str, Any]:
    """What a result says next to a quoted price: the market data type that produced it and,
    when IB refused live data, the fallback's ``{"code", "message"}`` (None without a quote)."""
    return {
        "market_data_type": quote_.get("market_data_type"),
        "market_data_fallback": quote_.get("fallback"),
    }


def price_of(quote_: dict[str, Any]) -> tuple[float | None, str]:
    """The price a plan uses and where it came from: the midpoint of a two-sided quote; the
    last trade or the close only when the quote is missing (the result says which)."""
    bid, ask = quote_.get("bid"), quote_.get("ask")
    if bid and ask and bid > 0 and ask > 0:
        # Rounded far below any tick: 592.92 and 592.94 give 592.93, not 592.9300000000001.
        return round((bid + ask) / 2, 8), "midpoint"
    for source in ("last", "close"):
        if quote_.get(source):
            return float(quote_[source]), source
    return None, "none"


def price_or_fail(quote_: dict[str, Any], name: str) -> tuple[float, str]:
    """price_of, or NoPrice naming what was missing and why IB sent no data, if it said."""
    price, source = price_of(quote_)
    if price is None:
        why = "no quote, last trade or close"
        if refused := quote_.get("refused"):
            why += f" (IB {refused['code']}: {refused['message']})"
        raise NoPrice(f"no price for {name}: {why}")
    return price, source


def order_view(qualified: dict[str, Any], order: dict[str, Any], price: float) -> OrderView:
    """One planned order as the risk gate sees it."""
    return OrderView(
        con_id=int(qualified.get("con_id") or 0),
        symbol=qualified.get("symbol", ""),
        sec_type=qualified.get("sec_type", ""),
        exchange=qualified.get("exchange", ""),
        currency=qualified.get("currency", ""),
        action=order["action"],
        quantity=float(order["quantity"]),
        price=price,
        multiplier=float(qualified.get("multiplier") or 1.0),
    )


def book_fills(ctx: Context, books: Books, legs: list[dict[str, Any]]) -> int:
    """Book every execution of this run's legs to the strategies they serve (once each)."""
    refs = {leg["order_ref"] for leg in legs}
    fills = ctx.broker.call(lambda gw: gw.executions(ctx.account), ctx.timeout)
    booked, _, _ = book_executions(books, [f for f in fills if f["order_ref"] in refs], ctx.key)
    return booked


def fail_if_incomplete(result: dict[str, Any], failed_strategies: list[str] | None = None) -> None:
    """A run in which IB rejected a leg (or a strategy failed) is never a plain success: its
    outcome is ``failed`` (``incomplete``), the whole result in the details. The earlier system
    reported such runs as successes."""
    failed = failed_strategies or []
    rejected = [leg["leg_id"] for leg in result["legs"] if leg.get("rejected")]
    if failed or rejected:
        problems = [f"strategies failed: {failed}"] if failed else []
        problems += [f"legs rejected by IB: {rejected}"] if rejected else []
        raise Incomplete("; ".join(problems) + "; the rest traded", {"result": result})
