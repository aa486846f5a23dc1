"""``allocation``: trade each strategy's target weights, consolidated into one order per
instrument, through the risk gate and the order journal.

For every selected strategy (default: each with a non-zero ``exposure.strategies`` share) the
data it declares is fetched (daily bars, quotes), its signal computed (``worker/strategies``)
and sized (``targets.py``). A strategy without a fresh signal holds; one that raises, lacks
data or weighs an instrument without a price or contract freezes its own instruments and is
reported; the others still trade. Nothing is sold by omission: only instruments a fresh
signal names are targeted. Orders net the strategies' deltas (opposite deltas cross
internally) and subtract what is already in flight, so a rerun while orders work does not
order the same quantity again. The plan is computed once and kept in the record; a
redelivery resumes it. Fills are booked to the strategies' holdings once per execution
(``holdings.py``). ``dry_run`` returns the whole plan and every check.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from worker import strategies
from worker.broker.pacing import Budget
from worker.config import TradingRules
from worker.errors import (
    ContractNotFound,
    DataRefused,
    IntentFailed,
    InvalidParams,
    NoPrice,
    RiskRefused,
)
from worker.holdings import Books, pro_rata
from worker.intents import trading
from worker.intents.base import Context, IntentSpec
from worker.intents.cancel_orders import ours
from worker.intents.targets import (
    Book,
    Priced,
    collar_price,
    consolidate,
    deltas,
    target_quantity,
)
from worker.journal import OrderJournal
from worker.risk import AccountView, Check, RiskGate


class AllocationParams(BaseModel):
    """Parameters of ``allocation``."""

    model_config = ConfigDict(extra="forbid")

    strategies: list[str] = Field(
        default_factory=list, max_length=50, description="Ids; default: all with a share."
    )
    order_style: Literal["limit", "adaptive"] | None = Field(
        None, description="Limit with a collar (default) or IB's Adaptive market algo."
    )
    collar_bps: float = Field(20.0, ge=0, le=500, description="Limit price offset from the quote.")
    wait_seconds: float = Field(20.0, ge=0, le=300, description="How long to await fills.")


def run(ctx: Context, params: AllocationParams) -> dict[str, Any]:
    """Plan once, book internal crosses, pass the gate, send every leg, await, book fills."""
    if ctx.orders is None or ctx.books is None:
        raise IntentFailed("allocation needs the order journal and the strategy books")
    rules = trading.rules(ctx)
    ids = _selected(rules, params)
    if rules.exposure.overall == 0 or not ids:
        return {"legs": [], "note": "nothing to allocate (exposure.overall 0 or no strategy)"}
    books = ctx.books
    plan = ctx.orders.plan(lambda: _plan(ctx, books, rules, ids, params))
    gate, account = RiskGate(rules.risk), trading.account_view(ctx)
    checks = _checks(gate, plan, account)
    if ctx.dry_run:
        return {"dry_run": True, **plan, "checks": [c.as_dict() for c in checks]}
    _commit(books, plan, ctx.key)
    legs = _send(ctx, ctx.orders, books, plan, gate, checks, params.wait_seconds)
    served = {leg["id"]: leg["shares"] for leg in plan["legs"]}
    legs = [{**leg, "strategies": served.get(leg["leg_id"], {})} for leg in legs]
    booked = trading.book_fills(ctx, books, legs)
    summary = {k: plan[k] for k in ("strategies", "failed", "held", "crosses")}
    result = {"legs": legs, "booked": booked, **summary}
    trading.fail_if_incomplete(result, [f["strategy"] for f in plan["failed"]])
    return result


def _selected(rules: TradingRules, params: AllocationParams) -> list[str]:
    shares = rules.exposure.strategies
    ids = params.strategies or [s for s, share in shares.items() if share]
    unknown = [s for s in params.strategies if s not in shares]
    if unknown:
        raise InvalidParams(f"strategies without an exposure share in the config: {unknown}")
    total = sum(abs(shares[s]) for s in ids)
    limit = rules.risk.max_share_sum
    if total > limit:
        raise RiskRefused(f"max_share_sum: the shares sum to {total} against limit {limit}")
    return ids


# -- the plan (computed once, kept in the record) -----------------------------------------------
def _plan(
    ctx: Context, books: Books, rules: TradingRules, ids: list[str], params: AllocationParams
) -> dict[str, Any]:
    account = trading.account_view(ctx)
    signals, failed, held = _signals(ctx, books, rules, ids)
    priced, unpriced = _price_all(ctx, rules, signals, account)
    failed += _freeze_unpriced(signals, unpriced)
    book = Book(holdings=books.holdings(ids), inflight=_inflight(ctx, books))
    base = account.net_liquidation * rules.exposure.overall
    for strategy, signal in signals.items():
        exposure = base * rules.exposure.strategies[strategy]
        targets = {
            priced[k].con_id: target_quantity(w, exposure, priced[k])
            for k, w in signal.weights.items()
        }
        book.targets[strategy] = targets
        book.deltas[strategy] = deltas(book, strategy, targets)
    by_con = {p.con_id: p for p in priced.values()}
    orders = consolidate(book, by_con)
    style = params.order_style or rules.order_style
    legs = [_leg(o, by_con[o["con_id"]], style, rules, params) for o in orders if o["quantity"]]
    return {
        "strategies": {s: {"notes": sig.notes, "state": sig.state} for s, sig in signals.items()},
        "failed": failed,
        "held": held,
        "prices": {str(c): _price_entry(p) for c, p in by_con.items()},
        "targets": _str_keys(book.targets),
        "holdings": _str_keys(book.holdings),
        "inflight": _str_keys(book.inflight),
        "crosses": [o for o in orders if o["cross"]],
        "legs": legs,
    }


def _signals(
    ctx: Context, books: Books, rules: TradingRules, ids: list[str]
) -> tuple[dict[str, strategies.Signal], list[dict[str, str]], list[str]]:
    signals, failed, held = {}, [], []
    for strategy_id in ids:
        raw = rules.strategies.get(strategy_id, {})
        try:
            strategy = strategies.get(strategy_id)
            data = _data(ctx, strategy_id, strategies.needs(strategy, raw), rules.market_data_type)
            signal = strategies.evaluate(strategy, data, raw, books.state(strategy_id))
        except strategies.StrategyFailed as exc:
            failed.append(exc.as_dict())  # its instruments are frozen: no delta from it
            continue
        if signal.fresh:
            signals[strategy_id] = signal
        else:
            held.append(strategy_id)
    return signals, failed, held


def _data(
    ctx: Context, strategy_id: str, needs: list[strategies.DataNeed], data_type: int
) -> strategies.MarketData:
    """What the strategy declared it needs; StrategyFailed (``missing_data``) when IB has no
    contract or data for it, or the historical pacing budget is spent until a later run."""
    try:
        return _fetch(ctx, needs, data_type)
    except (ContractNotFound, DataRefused, Budget) as exc:
        raise strategies.StrategyFailed(strategy_id, "missing_data", str(exc)) from None


def _fetch(ctx: Context, needs: list[strategies.DataNeed], data_type: int) -> strategies.MarketData:
    bars: dict[str, list[strategies.Bar]] = {}
    quotes: dict[str, strategies.Quote | None] = {}
    today = ctx.broker.call(lambda gw: gw.now(), ctx.timeout).date()
    for need in needs:
        spec = need.instrument.model_dump()
        if need.kind == "daily_bars":
            count = need.bars
            rows = ctx.broker.call(lambda gw, s=spec, n=count: gw.daily_bars(s, n), ctx.timeout)
            bars[need.instrument.key] = [strategies.Bar(**r) for r in _completed(rows, today)]
        else:
            quote = trading.quote(ctx, spec, data_type)
            quotes[need.instrument.key] = strategies.Quote(**_quote_fields(quote))
    return strategies.MarketData(bars=bars, quotes=quotes)


def _completed(rows: list[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    """Strategies see completed bars only: today's (still forming) bar is dropped."""
    return [r for r in rows if r["date"] < today.isoformat()]


def _price_all(
    ctx: Context, rules: TradingRules, signals: dict[str, strategies.Signal], account: AccountView
) -> tuple[dict[str, Priced], dict[str, str]]:
    """Every instrument a signal weighs, priced; those without a price or contract apart,
    each with the reason (IB's, when it gave one)."""
    priced: dict[str, Priced] = {}
    unpriced: dict[str, str] = {}
    for signal in signals.values():
        for key in signal.weights:
            if key in priced or key in unpriced:
                continue
            try:
                priced[key] = _priced(ctx, key, signal.instruments[key], rules, account)
            except (NoPrice, ContractNotFound) as exc:
                unpriced[key] = str(exc)
    return priced, unpriced


def _freeze_unpriced(
    signals: dict[str, strategies.Signal], unpriced: dict[str, str]
) -> list[dict[str, str]]:
    """Take out of ``signals`` each strategy weighing an unpriced instrument: it cannot be
    sized, so it is frozen like a strategy that failed; the others still trade."""
    failed = []
    for strategy_id in [s for s, sig in signals.items() if sig.weights.keys() & unpriced.keys()]:
        missing = sorted(signals.pop(strategy_id).weights.keys() & unpriced.keys())
        message = "; ".join(unpriced[k] for k in missing)
        failed.append(strategies.StrategyFailed(strategy_id, "missing_data", message).as_dict())
    return failed


def _priced(
    ctx: Context,
    key: str,
    instrument: strategies.Instrument,
    rules: TradingRules,
    account: AccountView,
) -> Priced:
    contract = trading.contract(ctx, instrument.model_dump())
    contract["exchange"] = instrument.exchange  # route as configured (SMART), not the listing
    quote = trading.quote(ctx, contract, rules.market_data_type)
    price, source = trading.price_or_fail(quote, key)
    fx = account.to_base(1.0, contract["currency"])
    return Priced(key, contract, price, source, fx, trading.data_used(quote))


def _price_entry(instrument: Priced) -> dict[str, Any]:
    """The plan's price of one instrument, where it came from and which market data type."""
    return {"price": instrument.price, "source": instrument.price_source, **instrument.market_data}


def _inflight(ctx: Context, books: Books) -> dict[str, dict[int, float]]:
    """Our working orders' remaining quantity, split over the strategies they serve."""
    flying: dict[str, dict[int, float]] = {}
    for order in ours(ctx):
        shares = books.order_shares(order["order_ref"])
        remaining = float(order.get("remaining") or 0.0)
        if not shares or remaining <= 0:
            continue
        signed = remaining if order["action"] == "BUY" else -remaining
        for strategy, part in pro_rata(signed, shares).items():
            by_con = flying.setdefault(strategy, {})
            by_con[order["con_id"]] = by_con.get(order["con_id"], 0.0) + part
    return flying


def _leg(
    order: dict[str, Any],
    instrument: Priced,
    style: str,
    rules: TradingRules,
    params: AllocationParams,
) -> dict[str, Any]:
    action = order["action"]
    spec: dict[str, Any] = {"action": action, "quantity": order["quantity"], "tif": "DAY"}
    if style == "adaptive":
        algo = {"strategy": "Adaptive", "params": {"adaptivePriority": rules.adaptive_priority}}
        spec.update(order_type="MKT", algo=algo)
    else:
        tick = instrument.contract.get("min_tick")
        limit = collar_price(instrument.price, action, params.collar_bps, tick)
        spec.update(order_type="LMT", limit_price=limit)
    return {
        "id": f"alloc-{order['con_id']}",
        "contract": instrument.contract,
        "order": spec,
        "shares": order["shares"],
        "price": instrument.price,
    }


# -- after the plan ------------------------------------------------------------------------------
def _checks(gate: RiskGate, plan: dict[str, Any], account: AccountView) -> list[Check]:
    legs = plan["legs"]
    views = [trading.order_view(leg["contract"], leg["order"], leg["price"]) for leg in legs]
    per_order = [c for v in views for c in gate.order_checks(v, account)]
    return per_order + gate.plan_checks(views, account)


def _commit(books: Books, plan: dict[str, Any], key: str) -> None:
    """Strategy states and internal crosses, written once however often the plan resumes."""
    for strategy, about in plan["strategies"].items():
        books.save_state(strategy, about["state"], key)
    for cross in plan["crosses"]:
        books.book(f"cross:{key}:{cross['con_id']}", cross["con_id"], cross["cross"], key=key)


def _send(
    ctx: Context,
    journal: OrderJournal,
    books: Books,
    plan: dict[str, Any],
    gate: RiskGate,
    checks: list[Check],
    wait: float,
) -> list[dict[str, Any]]:
    """Check every leg still to send, register each leg's strategy shares, send every leg,
    then await them all. All limits are known from the plan, so a leg over one refuses the
    run before the first order leaves (a resumed run skips legs already at IB)."""
    journalled = journal.legs
    to_send = {leg["contract"]["symbol"] for leg in plan["legs"] if leg["id"] not in journalled}
    gate.enforce([c for c in checks if not c.subject or c.subject in to_send])
    for leg in plan["legs"]:
        ref = journal.order_ref(leg["id"])
        books.register_order(ref, leg["shares"], key=ctx.key, con_id=leg["contract"]["con_id"])
        mine = [c for c in checks if c.subject == leg["contract"]["symbol"]]
        journal.place(leg["id"], leg["contract"], leg["order"], lambda m=mine: gate.enforce(m))
    return journal.settle([leg["id"] for leg in plan["legs"]], wait)


def _quote_fields(quote: dict[str, Any]) -> dict[str, Any]:
    return {k: quote.get(k) for k in ("bid", "ask", "last", "close")}


def _str_keys(nested: dict[str, dict[int, float]]) -> dict[str, dict[str, float]]:
    """Firestore map keys must be strings."""
    return {s: {str(c): q for c, q in by_con.items()} for s, by_con in nested.items()}


SPEC = IntentSpec(
    name="allocation",
    params=AllocationParams,
    run=run,
    description="Trade the strategies' target weights, one order per instrument.",
    places_orders=True,
)
