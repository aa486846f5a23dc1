"""Market messages: contract details, ticks, market data type, historical bars."""

from __future__ import annotations

from ibsim.messages import Out
from ibsim.model import Bar, Instrument, Quote
from ibsim.wire import fmt_decimal, fmt_float, fmt_multiplier

# Tick type ids (IB's TickType): live and delayed variants.
LIVE_TICKS = {"bid": 1, "ask": 2, "last": 4, "close": 9, "volume": 8, "last_time": 45}
DELAYED_TICKS = {"bid": 66, "ask": 67, "last": 68, "close": 75, "volume": 74, "last_time": 88}


def _last_times(inst: Instrument) -> str:
    # Futures carry "YYYYMMDD HH:MM zone", which the libraries split on spaces.
    if not inst.last_trade_date:
        return ""
    return f"{inst.last_trade_date} 09:30 {inst.time_zone}"


def contract_details(req_id: int, inst: Instrument) -> list[str]:
    """``10, reqId, ...`` (no version field since v164); 40 fields with no secIds."""
    return [
        str(Out.CONTRACT_DATA),
        str(req_id),
        inst.symbol,
        str(inst.sec_type),
        _last_times(inst),
        "0",  # strike
        "",  # right
        inst.exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,  # marketName
        inst.trading_class,
        str(inst.con_id),
        repr(inst.min_tick),
        fmt_multiplier(inst.multiplier),
        inst.order_types,
        inst.valid_exchanges,
        "1",  # priceMagnifier
        "0",  # underConId
        inst.long_name,
        inst.primary_exchange,
        inst.last_trade_date[:6],  # contractMonth
        inst.industry,
        inst.category,
        inst.subcategory,
        inst.time_zone,
        inst.trading_hours,
        inst.liquid_hours,
        "",  # evRule
        "",  # evMultiplier
        "0",  # secIdList count
        "1",  # aggGroup
        "",  # underSymbol
        "",  # underSecType
        inst.market_rule_ids,
        inst.last_trade_date,  # realExpirationDate
        inst.stock_type,
        fmt_decimal(inst.min_size),
        fmt_decimal(inst.size_increment),
        fmt_decimal(inst.size_increment),  # suggestedSizeIncrement
    ]


def contract_details_end(req_id: int) -> list[str]:
    return [str(Out.CONTRACT_DATA_END), "1", str(req_id)]


def market_data_type(req_id: int, data_type: int) -> list[str]:
    return [str(Out.MARKET_DATA_TYPE), "1", str(req_id), str(data_type)]


def tick_price(req_id: int, tick_type: int, price: float, size: float) -> list[str]:
    """``1, 6, reqId, tickType, price, size, attrMask``."""
    return [
        str(Out.TICK_PRICE),
        "6",
        str(req_id),
        str(tick_type),
        fmt_float(price),
        fmt_decimal(size),
        "0",
    ]


def tick_size(req_id: int, tick_type: int, size: float) -> list[str]:
    return [str(Out.TICK_SIZE), "6", str(req_id), str(tick_type), fmt_decimal(size)]


def tick_string(req_id: int, tick_type: int, value: str) -> list[str]:
    return [str(Out.TICK_STRING), "6", str(req_id), str(tick_type), value]


def quote_ticks(req_id: int, quote: Quote, epoch: int, *, delayed: bool) -> list[list[str]]:
    """The messages that carry one quote: bid, ask, last, close, volume, last timestamp."""
    ids = DELAYED_TICKS if delayed else LIVE_TICKS
    return [
        tick_price(req_id, ids["bid"], quote.bid, quote.bid_size),
        tick_price(req_id, ids["ask"], quote.ask, quote.ask_size),
        tick_price(req_id, ids["last"], quote.last, quote.last_size),
        tick_price(req_id, ids["close"], quote.close, 0),
        tick_size(req_id, ids["volume"], quote.volume),
        tick_string(req_id, ids["last_time"], str(epoch)),
    ]


def tick_snapshot_end(req_id: int) -> list[str]:
    return [str(Out.TICK_SNAPSHOT_END), "1", str(req_id)]


def historical_data(req_id: int, start: str, end: str, bars: list[Bar]) -> list[str]:
    """``17, reqId, start, end, n, (date, o, h, l, c, volume, wap, count)*n`` (no version)."""
    fields = [str(Out.HISTORICAL_DATA), str(req_id), start, end, str(len(bars))]
    for bar in bars:
        fields += [
            bar.date,
            fmt_float(bar.open),
            fmt_float(bar.high),
            fmt_float(bar.low),
            fmt_float(bar.close),
            fmt_decimal(bar.volume),
            fmt_float(bar.wap),
            str(bar.count),
        ]
    return fields
