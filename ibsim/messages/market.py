"""Market messages: contract details, ticks, market data type, historical bars."""

from __future__ import annotations

from ibsim.messages import Out, option_fields
from ibsim.model import Bar, DepthLevel, Instrument, Quote
from ibsim.options import Greeks
from ibsim.wire import fmt_decimal, fmt_float, fmt_multiplier

# Tick type ids (IB's TickType): live and delayed variants.
LIVE_TICKS = {"bid": 1, "ask": 2, "last": 4, "close": 9, "volume": 8, "last_time": 45}
DELAYED_TICKS = {"bid": 66, "ask": 67, "last": 68, "close": 75, "volume": 74, "last_time": 88}
# A price tick's own size tick: sent alone when only the size changed.
SIZE_OF = {1: 0, 2: 3, 4: 5, 66: 69, 67: 70, 68: 71}
# Generic ticks ibsim models (reqMktData genericTickList) and the ticks they bring.
RT_VOLUME, SHORTABLE, SHORTABLE_SHARES = 48, 46, 89
MISC_STATS = {"low13week": 15, "high13week": 16, "low26week": 17, "high26week": 18,
              "low52week": 19, "high52week": 20}  # fmt: skip
AVERAGE_VOLUME = 21
# tickOptionComputation types: computed from the bid, the ask, the last price, the model.
OPTION_TICKS = {"bid": 10, "ask": 11, "last": 12, "model": 13}


def _last_times(inst: Instrument) -> str:
    # Futures carry "YYYYMMDD HH:MM zone", which the libraries split on spaces.
    if not inst.last_trade_date:
        return ""
    return f"{inst.last_trade_date} 09:30 {inst.time_zone}"


def _sec_ids(inst: Instrument) -> list[str]:
    """secIdList: its count, then tag/value pairs (stocks carry their ISIN)."""
    return ["1", "ISIN", inst.isin] if inst.isin else ["0"]


def contract_details(req_id: int, inst: Instrument) -> list[str]:
    """``10, reqId, ...`` (no version field since v164); 40 fields with no secIds, 42 with
    the ISIN."""
    return [
        str(Out.CONTRACT_DATA),
        str(req_id),
        inst.symbol,
        str(inst.sec_type),
        _last_times(inst),
        *option_fields(inst),
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
        str(inst.underlying_con_id),
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
        *_sec_ids(inst),
        "1",  # aggGroup
        inst.symbol if inst.underlying_con_id else "",  # underSymbol
        "STK" if inst.underlying_con_id else "",  # underSecType
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


def tick_generic(req_id: int, tick_type: int, value: float) -> list[str]:
    return [str(Out.TICK_GENERIC), "6", str(req_id), str(tick_type), fmt_float(value)]


def tick_req_params(req_id: int, min_tick: float, bbo_exchange: str = "") -> list[str]:
    """``81, reqId, minTick, bboExchange, snapshotPermissions``: what a gateway sends right
    after the market data type of every reqMktData."""
    return [str(Out.TICK_REQ_PARAMS), str(req_id), repr(min_tick), bbo_exchange, "3"]


def top_of_book(req_id: int, quote: Quote, *, delayed: bool) -> dict[int, list[str]]:
    """bid, ask and last (with their sizes) and the day's volume, keyed by tick type."""
    ids = DELAYED_TICKS if delayed else LIVE_TICKS
    return {
        ids["bid"]: tick_price(req_id, ids["bid"], quote.bid, quote.bid_size),
        ids["ask"]: tick_price(req_id, ids["ask"], quote.ask, quote.ask_size),
        ids["last"]: tick_price(req_id, ids["last"], quote.last, quote.last_size),
        ids["volume"]: tick_size(req_id, ids["volume"], quote.volume),
    }


def close_tick(req_id: int, quote: Quote, *, delayed: bool) -> list[str]:
    close = (DELAYED_TICKS if delayed else LIVE_TICKS)["close"]
    return tick_price(req_id, close, quote.close, 0)


def last_time_tick(req_id: int, epoch: int, *, delayed: bool) -> list[str]:
    last_time = (DELAYED_TICKS if delayed else LIVE_TICKS)["last_time"]
    return tick_string(req_id, last_time, str(epoch))


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


def historical_data_update(req_id: int, bar: Bar) -> list[str]:
    """``90, reqId, barCount, date, open, close, high, low, WAP, volume`` (keepUpToDate)."""
    return [
        str(Out.HISTORICAL_DATA_UPDATE),
        str(req_id),
        str(bar.count),
        bar.date,
        fmt_float(bar.open),
        fmt_float(bar.close),
        fmt_float(bar.high),
        fmt_float(bar.low),
        fmt_float(bar.wap),
        fmt_decimal(bar.volume),
    ]


def market_depth(req_id: int, level: DepthLevel, operation: int, smart: bool) -> list[str]:
    """``12, 1, reqId, position, operation, side, price, size`` (exchange depth) or, smart,
    ``13, 1, reqId, position, marketMaker, operation, side, price, size, isSmartDepth``.

    Operation 0 insert, 1 update, 2 delete; side 0 ask, 1 bid.
    """
    values = [str(operation), str(level.side), fmt_float(level.price), fmt_decimal(level.size)]
    if smart:
        return [str(Out.MARKET_DEPTH_L2), "1", str(req_id), str(level.position), "SMART",
                *values, "1"]  # fmt: skip
    return [str(Out.MARKET_DEPTH), "1", str(req_id), str(level.position), *values]


def option_computation(req_id: int, tick_type: int, g: Greeks) -> list[str]:
    """``21, reqId, tickType, tickAttrib, impliedVol, delta, optPrice, pvDividend, gamma,
    vega, theta, undPrice`` (no version field since v156; tickAttrib 1: price based)."""
    values = (g.implied_vol, g.delta, g.price, 0.0, g.gamma, g.vega, g.theta, g.underlying)
    return [str(Out.TICK_OPTION_COMPUTATION), str(req_id), str(tick_type), "1",
            *(repr(round(v, 6)) for v in values)]  # fmt: skip
