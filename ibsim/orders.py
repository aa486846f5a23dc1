"""Order rules without state: validation, stop triggers, matching prices and commissions.

Matching is against the top of book only: a marketable order fills at the ask (buy) or bid
(sell), a limit order fills there once the quote crosses its limit, a stop triggers when the
last price touches the stop price (IB's default trigger for US stocks) and then behaves as MKT
(STP) or LMT (STP LMT).
"""

from __future__ import annotations

from ibsim import ibtime
from ibsim.model import (
    ExecutionFilter,
    Fill,
    Instrument,
    Order,
    OrderRejected,
    OrderRequest,
    Quote,
    SecType,
)
from ibsim.scenario import Commissions

ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT"})
LIMIT_TYPES = frozenset({"LMT", "STP LMT"})
STOP_TYPES = frozenset({"STP", "STP LMT"})
TIFS = frozenset({"DAY", "GTC", "IOC", "GTD", "OPG"})
ALGOS = frozenset({"", "Adaptive"})
ACTIONS = frozenset({"BUY", "SELL"})

# IB error codes the broker raises.
CODE_REJECTED = 201
CODE_NO_SECURITY = 200
CODE_VALIDATION = 321
CODE_DUPLICATE_ID = 103
CODE_MODIFY_MISMATCH = 105
CODE_ALLOCATION = 436


def normalise_type(order_type: str) -> str:
    """``STPLMT`` and ``stp lmt`` -> ``STP LMT``."""
    text = " ".join(order_type.upper().split())
    return "STP LMT" if text == "STPLMT" else text


def validate(req: OrderRequest, inst: Instrument) -> None:
    """Static checks of one order request against its instrument.

    Raises:
        OrderRejected: with code 201 and IB-like reason text.
    """
    order_type = normalise_type(req.order_type)
    problems = (
        (inst.sec_type == SecType.INDEX, f"Index {inst.symbol} is not tradable"),
        (req.action.upper() not in ACTIONS, f"Invalid action {req.action!r}"),
        (req.total_quantity <= 0, "Order quantity must be positive"),
        (order_type not in ORDER_TYPES, f"Unsupported order type {req.order_type!r}"),
        (req.tif.upper() not in TIFS, f"Unsupported time in force {req.tif!r}"),
        (req.algo_strategy not in ALGOS, f"Unsupported algo strategy {req.algo_strategy!r}"),
        (order_type in LIMIT_TYPES and not _price(req.lmt_price), "Missing or invalid limit price"),
        (order_type in STOP_TYPES and not _price(req.aux_price), "Missing or invalid stop price"),
    )
    for failed, reason in problems:
        if failed:
            raise OrderRejected(f"Order rejected - reason: {reason}", CODE_REJECTED)


def _price(value: float | None) -> bool:
    return value is not None and value > 0


def sign(req: OrderRequest) -> float:
    """+1 for BUY, -1 for SELL."""
    return 1.0 if req.action.upper() == "BUY" else -1.0


def stop_touched(req: OrderRequest, quote: Quote) -> bool:
    """Whether the last price has reached a stop order's stop price."""
    stop = req.aux_price or 0.0
    return quote.last >= stop if sign(req) > 0 else quote.last <= stop


def fill_price(order: Order, quote: Quote) -> float | None:
    """The price the order can fill at now, or None if it cannot (untriggered or not crossed).

    Stops must already be marked triggered by the caller.
    """
    req = order.request
    order_type = normalise_type(req.order_type)
    if order_type in STOP_TYPES and not order.triggered:
        return None
    buying = sign(req) > 0
    touch = quote.ask if buying else quote.bid
    if touch <= 0:
        return None
    if order_type in LIMIT_TYPES:
        limit = req.lmt_price or 0.0
        crossed = touch <= limit if buying else touch >= limit
        return touch if crossed else None
    return touch


def estimate_price(req: OrderRequest, quote: Quote) -> float:
    """The price a buying-power check assumes: the limit, the stop, or the touch."""
    if normalise_type(req.order_type) in LIMIT_TYPES and req.lmt_price:
        return req.lmt_price
    if normalise_type(req.order_type) == "STP" and req.aux_price:
        return req.aux_price
    return quote.ask if sign(req) > 0 else quote.bid


def liquidity(req: OrderRequest) -> int:
    """IB's lastLiquidity: 1 (added) for limit orders, 2 (removed) for market-like ones."""
    return 1 if normalise_type(req.order_type) in LIMIT_TYPES else 2


def order_commission(
    inst: Instrument, schedule: Commissions, quantity: float, notional: float, usd: float
) -> float:
    """Commission for an order's cumulative ``quantity`` and ``notional`` so far.

    Each execution pays the increase of this figure, so minimums apply once per order, as at
    IB. The result is in the instrument's currency; ``usd`` is the value of one unit of that
    currency in USD (for the USD-denominated FX minimum).
    """
    if quantity <= 0:
        return 0.0
    if inst.sec_type == SecType.FUTURE:
        return round(schedule.future_per_contract * quantity / usd, 2)
    if inst.sec_type == SecType.OPTION:
        per_contract = schedule.option_per_contract * quantity
        return round(max(schedule.option_minimum, per_contract) / usd, 2)
    if inst.sec_type == SecType.CASH:
        in_usd = max(schedule.fx_minimum, notional * usd * schedule.fx_bps / 10_000)
        return round(in_usd / usd, 2)
    per_share = max(schedule.stock_minimum, schedule.stock_per_share * quantity)
    return round(min(per_share, schedule.stock_max_fraction * notional) / usd, 2)


def filter_time(text: str) -> float | None:
    """reqExecutions time filter (IB's forms, see ibsim.ibtime) as Unix time; None = all."""
    return ibtime.parse(text).timestamp() if text.strip() else None


def fill_matches(fill: Fill, flt: ExecutionFilter, since: float | None) -> bool:
    """Whether one execution passes a reqExecutions filter (empty fields match all)."""
    side = {"BUY": "BOT", "SELL": "SLD"}.get(flt.side.upper(), flt.side.upper())
    checks = (
        not flt.client_id or fill.order_key[0] == flt.client_id,
        not flt.account or fill.account == flt.account,
        since is None or fill.epoch >= since,
        not flt.symbol or fill.instrument.symbol.upper() == flt.symbol.upper(),
        not flt.sec_type or fill.instrument.sec_type.value == flt.sec_type.upper(),
        not flt.exchange or flt.exchange.upper() in (fill.instrument.exchange, "SMART"),
        not side or fill.side == side,
    )
    return all(checks)
