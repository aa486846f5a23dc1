"""``cash_balancer``: convert every foreign cash balance worth more than the threshold back to
the account's base currency, with one FXCONV conversion each.

A balance counts when its value in the base currency (IB's ``ExchangeRate``) exceeds
``cashBalanceThresholdInBaseCurrency`` (or the ``threshold`` param) in either direction: a
negative balance (a loan) is bought back just as a positive one is sold. The conversion uses
the pair that exists at IB, quoted by market convention (EUR.USD, GBP.USD, USD.CHF, USD.JPY,
EUR.CHF, ...), and FXCONV, which converts cash without opening an FX position. Amounts are
rounded toward zero to ``lot`` units. A USD-base account never asks for a USD.USD rate; a
rejected conversion fails the run, naming IB's reason.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worker.errors import IntentFailed, OrderRejected
from worker.intents import trading
from worker.intents.base import Context, IntentSpec
from worker.intents.targets import round_toward_zero
from worker.risk import AccountView, RiskGate

# FX quoting precedence: the earlier currency of a pair is its symbol (EUR.USD, USD.JPY).
PRECEDENCE = ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "NOK", "SEK", "DKK", "JPY")


class CashBalancerParams(BaseModel):
    """Parameters of ``cash_balancer``."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(
        None, ge=0, description="Base-currency value to act on; default from the config."
    )
    currencies: list[str] = Field(default_factory=list, description="Only these; default all.")
    lot: float = Field(1000.0, gt=0, description="Amounts are rounded toward zero to this.")
    wait_seconds: float = Field(15.0, ge=0, le=120)


def pair(currency: str, base: str) -> tuple[str, str]:
    """(symbol, currency) of the FX pair IB lists for two currencies."""
    rank = {c: i for i, c in enumerate(PRECEDENCE)}
    first, second = sorted((currency, base), key=lambda c: (rank.get(c, len(rank)), c))
    return first, second


def conversion(cash: float, currency: str, base: str, price: float, lot: float) -> dict[str, Any]:
    """The order that turns ``cash`` of ``currency`` into ``base`` on the listed pair.

    ``price`` is the pair's price (units of its second currency per unit of its symbol).
    """
    symbol, quote_ccy = pair(currency, base)
    if symbol == currency:  # e.g. EUR cash, USD base, EUR.USD: sell the EUR
        quantity = abs(cash)
        action = "SELL" if cash > 0 else "BUY"
    else:  # e.g. USD cash, EUR base, EUR.USD: buy EUR with the USD
        quantity = abs(cash) / price
        action = "BUY" if cash > 0 else "SELL"
    contract = {"symbol": symbol, "sec_type": "CASH", "currency": quote_ccy, "exchange": "FXCONV"}
    order = {"action": action, "quantity": round_toward_zero(quantity, lot), "order_type": "MKT"}
    return {"contract": contract, "order": order}


def run(ctx: Context, params: CashBalancerParams) -> dict[str, Any]:
    """Plan once (balances, rates, pairs), then convert each, awaiting every fill."""
    if ctx.orders is None:
        raise IntentFailed("cash_balancer needs the order journal")
    rules = trading.rules(ctx)
    threshold = rules.cash_balance_threshold if params.threshold is None else params.threshold
    account = trading.account_view(ctx)
    plan = ctx.orders.plan(lambda: _plan(ctx, account, threshold, params))
    gate = RiskGate(rules.risk)
    for leg in plan["legs"]:
        view = trading.order_view(leg["contract"], leg["order"], leg["price"])
        leg["checks"] = [c.as_dict() for c in gate.order_checks(view, account)]
    if ctx.dry_run:
        return {"dry_run": True, **plan}
    for leg in plan["legs"]:
        view = trading.order_view(leg["contract"], leg["order"], leg["price"])
        checks = gate.order_checks(view, account)
        ctx.orders.place(leg["id"], leg["contract"], leg["order"], lambda c=checks: gate.enforce(c))
    legs = ctx.orders.settle([leg["id"] for leg in plan["legs"]], params.wait_seconds)
    rejected = [leg for leg in legs if leg.get("rejected")]
    if rejected:
        raise OrderRejected(f"{len(rejected)} conversion(s) rejected by IB", {"legs": legs})
    return {"legs": legs, "balances": plan["balances"], "base_currency": plan["base_currency"]}


def _plan(
    ctx: Context, account: AccountView, threshold: float, params: CashBalancerParams
) -> dict[str, Any]:
    rows = ctx.broker.call(lambda gw: gw.account_values(ctx.account), ctx.timeout)
    base = account.base_currency
    cash = {
        r["currency"]: float(r["value"])
        for r in rows
        if r["tag"] == "CashBalance" and r["currency"] not in ("", "BASE", base)
    }
    wanted = params.currencies or sorted(cash)
    balances, legs = {}, []
    for currency in wanted:
        value = account.to_base(cash.get(currency, 0.0), currency)
        balances[currency] = {"cash": cash.get(currency, 0.0), "in_base": round(value, 2)}
        if abs(value) <= threshold:
            continue
        leg = _leg(ctx, currency, base, cash[currency], params.lot)
        if leg["order"]["quantity"] > 0:
            legs.append(leg)
    return {"base_currency": base, "threshold": threshold, "balances": balances, "legs": legs}


def _leg(ctx: Context, currency: str, base: str, cash: float, lot: float) -> dict[str, Any]:
    symbol, quote_ccy = pair(currency, base)
    spec = {"symbol": symbol, "sec_type": "CASH", "currency": quote_ccy, "exchange": "IDEALPRO"}
    contract = trading.contract(ctx, spec)
    # Live (1) whatever is configured: IB gives IDEALPRO quotes to every login, and a refusal
    # still falls back to delayed data (Gateway.quote).
    quote = trading.quote(ctx, contract, 1)
    price, _ = trading.price_or_fail(quote, f"{symbol}.{quote_ccy}")
    planned = conversion(cash, currency, base, price, lot)
    planned["contract"] = {**contract, **planned["contract"]}
    return {"id": f"fx-{currency}", "price": price, **planned}


SPEC = IntentSpec(
    name="cash_balancer",
    params=CashBalancerParams,
    run=run,
    description="Convert foreign cash above the threshold back to the base currency (FXCONV).",
    places_orders=True,
)
