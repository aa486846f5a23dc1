"""Clock, catalog, trading hours, deterministic prices, FX rates and historical bars."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ibsim import hours, walk
from ibsim.market import Catalog, Clock, Market, ib_time, round_tick
from ibsim.model import ContractQuery, SecType, UnknownContract

# Tuesday 24 Nov 2026, 10:00 New York: US equities open; Thursday 26th is Thanksgiving.
OPEN = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
THANKSGIVING = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
EASTERN = ZoneInfo("US/Eastern")


def make_market(when: datetime = OPEN, seed: int = 0, **seeds: float) -> Market:
    """A market on a frozen clock (shared helper for this file)."""
    return Market(Catalog.builtin(), Clock(when, frozen=True), seed=seed, price_seeds=seeds)


def one(market: Market, **fields: str) -> object:
    found = market.catalog.resolve(ContractQuery(**fields))
    assert len(found) == 1, found
    return found[0]


# --- clock -------------------------------------------------------------------------------
def test_frozen_clock_moves_only_when_told() -> None:
    clock = Clock(OPEN, frozen=True)
    assert clock.now() == OPEN
    clock.advance(90)
    assert clock.now() == OPEN + timedelta(seconds=90)
    clock.set(datetime(2027, 1, 4, 15, 0))  # naive = UTC
    assert clock.now() == datetime(2027, 1, 4, 15, 0, tzinfo=UTC)


def test_running_clock_advances_and_freezes() -> None:
    clock = Clock(OPEN)
    first = clock.now()
    assert first >= OPEN
    assert first.tzinfo is not None
    clock.freeze()
    frozen_at = clock.now()
    assert clock.now() == frozen_at
    assert clock.frozen
    clock.advance(5)
    clock.unfreeze()
    assert clock.now() >= frozen_at + timedelta(seconds=5)


def test_ib_time_format() -> None:
    assert ib_time(OPEN) == "20261124 15:00:00 UTC"


# --- catalog -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "con_id"),
    [
        ({"symbol": "SPY", "sec_type": "STK", "exchange": "SMART", "currency": "USD"}, 756733),
        ({"symbol": "aapl", "exchange": "NASDAQ"}, 265598),
        ({"con_id": "272093"}, 272093),
        (
            {"symbol": "EUR", "sec_type": "CASH", "currency": "USD", "exchange": "IDEALPRO"},
            12087792,
        ),
        ({"local_symbol": "USD.JPY"}, 15016059),
        ({"symbol": "SPX", "sec_type": "IND", "exchange": "CBOE"}, 416904),
        ({"symbol": "MES", "last_trade_date": "202612"}, 720261218),
        ({"local_symbol": "MESH7"}, 720270319),
        ({"symbol": "IBM", "exchange": "SMART", "currency": "USD"}, 8314),
        ({"symbol": "AMZN", "sec_type": "STK"}, 3691937),
        ({"symbol": "TSLA", "sec_type": "STK"}, 76792991),
        ({"symbol": "NVDA", "sec_type": "STK"}, 4815747),
        ({"symbol": "META", "sec_type": "STK"}, 107113386),
        ({"symbol": "GOOGL", "sec_type": "STK"}, 208813719),
        ({"local_symbol": "USD.CAD"}, 15016062),
        ({"symbol": "AUD", "currency": "USD", "exchange": "IDEALPRO"}, 14433401),
        ({"symbol": "VIX", "sec_type": "IND", "exchange": "CBOE"}, 13455763),
        ({"symbol": "ES", "last_trade_date": "202612"}, 620261218),
        ({"symbol": "NQ", "last_trade_date": "20261218"}, 520261218),
        ({"symbol": "MNQ", "last_trade_date": "202612", "exchange": "GLOBEX"}, 420261218),
    ],
)
def test_resolve_unique(fields: dict, con_id: int) -> None:
    if "con_id" in fields:
        fields = {"con_id": int(fields["con_id"])}
    assert one(make_market(), **fields).con_id == con_id


def test_resolve_fxconv_keeps_exchange() -> None:
    inst = one(make_market(), symbol="EUR", sec_type="CASH", currency="USD", exchange="FXCONV")
    assert inst.exchange == "FXCONV"
    assert inst.con_id == 12087792


def test_resolve_ambiguous_futures_lists_next_quarters() -> None:
    found = make_market().catalog.resolve(ContractQuery(symbol="MES", sec_type="FUT"))
    assert [i.local_symbol for i in found] == ["MESZ6", "MESH7", "MESM7", "MESU7"]
    assert all(i.multiplier == 5 and i.exchange == "CME" for i in found)


@pytest.mark.parametrize(("symbol", "multiplier"), [("ES", 50), ("NQ", 20), ("MNQ", 2)])
def test_each_future_lists_its_own_next_quarters(symbol: str, multiplier: float) -> None:
    found = make_market().catalog.resolve(ContractQuery(symbol=symbol, exchange="GLOBEX"))
    assert [i.local_symbol for i in found] == [f"{symbol}{q}" for q in ("Z6", "H7", "M7", "U7")]
    assert {(i.multiplier, i.exchange, i.min_tick) for i in found} == {(multiplier, "CME", 0.25)}


def test_micro_and_e_mini_futures_share_their_index_path() -> None:
    market = make_market()
    nq, mnq = (one(market, symbol=s, last_trade_date="202612") for s in ("NQ", "MNQ"))
    es, mes = (one(market, symbol=s, last_trade_date="202612") for s in ("ES", "MES"))
    assert market.quote(nq).last == market.quote(mnq).last
    assert market.quote(es).last == market.quote(mes).last
    assert 18_000 < market.quote(nq).last < 25_000
    vix = one(market, symbol="VIX")
    assert 5 < market.quote(vix).last < 60


def test_new_stocks_carry_their_isin() -> None:
    market = make_market()
    assert one(market, symbol="GOOGL").isin == "US02079K3059"
    assert one(market, symbol="IBM").primary_exchange == "NYSE"


def test_resolve_ambiguous_currency_pairs() -> None:
    found = make_market().catalog.resolve(ContractQuery(symbol="EUR", sec_type="CASH"))
    assert {i.local_symbol for i in found} == {"EUR.USD", "EUR.GBP", "EUR.JPY", "EUR.CHF"}


def test_expired_future_not_listed_but_known_by_con_id() -> None:
    market = make_market(datetime(2026, 12, 21, 15, 0, tzinfo=UTC))
    found = market.catalog.resolve(ContractQuery(symbol="MES"))
    assert found[0].local_symbol == "MESH7"
    assert market.catalog.by_con_id(720261218).local_symbol == "MESZ6"


@pytest.mark.parametrize(
    "fields",
    [
        {"symbol": "NOPE"},
        {"symbol": "SPY", "currency": "EUR"},
        {"symbol": "SPY", "exchange": "CME"},
        {"symbol": "SPY", "strike": 501.0, "right": "C"},  # not a listed strike
        {"symbol": "SPY", "sec_type": "OPT", "strike": 600.0, "right": "X"},
        {"symbol": "EUR", "sec_type": "CASH", "currency": "USD", "exchange": "SMART"},
        {"con_id": 1},
    ],
)
def test_resolve_unknown(fields: dict) -> None:
    with pytest.raises(UnknownContract):
        make_market().catalog.resolve(ContractQuery(**fields))


def test_find_for_scenarios() -> None:
    catalog = make_market().catalog
    assert catalog.find("EUR.USD").con_id == 12087792
    assert catalog.find("MES").local_symbol == "MESZ6"
    assert catalog.find(756733).symbol == "SPY"
    with pytest.raises(UnknownContract):
        catalog.find("ZZZ")


# --- hours -------------------------------------------------------------------------------
def test_stock_hours_string_has_holiday_and_early_close() -> None:
    spy = one(make_market(), symbol="SPY")
    assert spy.time_zone == "US/Eastern"
    assert spy.liquid_hours.split(";")[:4] == [
        "20261124:0930-20261124:1600",
        "20261125:0930-20261125:1600",
        "20261126:CLOSED",
        "20261127:0930-20261127:1300",
    ]
    assert spy.trading_hours.startswith("20261124:0400-20261124:2000;")


def test_future_and_fx_hours_strings() -> None:
    market = make_market()
    mes = one(market, local_symbol="MESZ6")
    assert mes.time_zone == "US/Central"
    assert mes.trading_hours.startswith("20261123:1700-20261124:1600;")
    assert mes.liquid_hours.startswith("20261124:0830-20261124:1500;")
    eur = one(market, local_symbol="EUR.USD")
    assert eur.trading_hours.startswith("20261123:1715-20261124:1700;")
    assert "20261128:CLOSED" in eur.trading_hours


@pytest.mark.parametrize(
    ("when", "spy", "mes", "eur"),
    [
        (OPEN, True, True, True),
        (THANKSGIVING, False, True, True),  # CME trades a short session, FX trades
        (SATURDAY, False, False, False),
        (datetime(2026, 11, 24, 13, 0, tzinfo=UTC), False, True, True),  # 08:00 ET pre-market
        (datetime(2026, 11, 24, 22, 30, tzinfo=UTC), False, False, True),  # CME daily halt
        (datetime(2026, 11, 27, 18, 30, tzinfo=UTC), False, False, True),  # after 13:00 close
    ],
)
def test_is_open(when: datetime, spy: bool, mes: bool, eur: bool) -> None:
    market = make_market(when)
    assert market.is_open(market.catalog.find("SPY")) is spy
    assert market.is_open(market.catalog.find("MES")) is mes
    assert market.is_open(market.catalog.find("EUR.USD")) is eur


def test_outside_rth_uses_extended_hours() -> None:
    market = make_market(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
    assert market.is_open(market.catalog.find("SPY"), outside_rth=True)


def test_day_order_expiry_is_session_close() -> None:
    market = make_market()
    close = market.day_order_expiry(market.catalog.find("SPY"), OPEN)
    assert close == datetime(2026, 11, 24, 16, 0, tzinfo=EASTERN)
    after_hours = market.day_order_expiry(market.catalog.find("SPY"), THANKSGIVING)
    assert after_hours == datetime(2026, 11, 27, 13, 0, tzinfo=EASTERN)


def test_holidays_come_from_the_exchange_calendar() -> None:
    # 2027-07-05 (Independence Day observed) and Good Friday 2027-03-26 are XNYS holidays.
    assert hours.sessions("stk", datetime(2027, 7, 5).date(), True) == ()
    assert hours.sessions("stk", datetime(2027, 3, 26).date(), True) == ()
    assert hours.sessions("stk", datetime(2027, 3, 25).date(), True) != ()


# --- prices ------------------------------------------------------------------------------
def test_quote_is_deterministic_and_history_free() -> None:
    a, b = make_market(seed=5), make_market(seed=5)
    spy_a, spy_b = a.catalog.find("SPY"), b.catalog.find("SPY")
    a.clock.advance(3600)
    a.quote(spy_a)  # asking at other times first must not change the answer
    a.clock.set(OPEN)
    assert a.quote(spy_a) == b.quote(spy_b)
    assert make_market(seed=6).quote(spy_a) != b.quote(spy_b)


def test_quote_is_on_the_tick_grid_with_a_small_spread() -> None:
    market = make_market()
    for key in ("SPY", "MES", "EUR.USD", "USD.JPY"):
        inst = market.catalog.find(key)
        q = market.quote(inst)
        ticks = round((q.ask - q.bid) / inst.min_tick)
        assert 1 <= ticks <= 3, (key, q)
        for price in (q.bid, q.ask, q.last):
            assert math.isclose(price / inst.min_tick, round(price / inst.min_tick), abs_tol=1e-6)
        assert q.bid <= q.last <= q.ask
        assert q.close > 0
        assert q.bid_size > 0


def test_prices_stay_near_their_seeds_and_move_over_time() -> None:
    market = make_market(SPY=600.0)
    spy = market.catalog.find("SPY")
    first = market.quote(spy).last
    assert 450 < first < 750
    market.clock.advance(3600)
    assert market.quote(spy).last != first


def test_price_seed_for_fx_pair() -> None:
    market = make_market(**{"USD.JPY": 100.0})
    assert 80 < market.quote(market.catalog.find("USD.JPY")).last < 120


def test_index_quote_has_no_spread() -> None:
    market = make_market()
    q = market.quote(market.catalog.find("SPX"))
    assert q.bid == q.ask == q.last
    assert q.bid_size == 0


def test_mes_tracks_spx_with_carry() -> None:
    market = make_market()
    spx = market.quote(market.catalog.find("SPX")).last
    mes = market.quote(market.catalog.find("MES")).last
    assert spx < mes < spx * 1.01


def test_fx_rates_are_consistent_across_pairs() -> None:
    market = make_market()
    t = math.floor(OPEN.timestamp())
    eurusd = market.mid(market.catalog.find("EUR.USD"), t)
    usdjpy = market.mid(market.catalog.find("USD.JPY"), t)
    eurjpy = market.mid(market.catalog.find("EUR.JPY"), t)
    assert math.isclose(eurjpy, eurusd * usdjpy, rel_tol=1e-12)
    assert math.isclose(market.fx_rate("EUR", "USD"), eurusd, rel_tol=1e-12)
    assert math.isclose(market.fx_rate("JPY", "EUR"), 1 / eurjpy, rel_tol=1e-12)
    assert market.fx_rate("USD", "USD") == 1.0


def test_walk_bridge_is_pinned_and_unit_variance() -> None:
    key = walk.tag_key("x")
    assert walk.bridge(key, 10, 0) == 0.0
    assert walk.bridge(key, 10, 1024) == 0.0
    values = [walk.bridge(key, 10, 512 + 1024 * k) for k in range(400)]
    variance = sum(v * v for v in values) / len(values)
    assert 256 * 0.75 < variance < 256 * 1.25  # a bridge's midpoint has variance span / 4
    assert walk.normal(key, 1) == walk.normal(key, 1) != walk.normal(key, 2)
    draws = [walk.normal(key, n) for n in range(4000)]
    assert abs(sum(draws) / 4000) < 0.06
    assert 0.9 < sum(d * d for d in draws) / 4000 < 1.1


def test_round_tick() -> None:
    assert round_tick(1.123456, 0.00005) == 1.12345
    assert round_tick(6001.13, 0.25) == 6001.25
    assert round_tick(149.9987, 0.005) == 150.0


# --- bars --------------------------------------------------------------------------------
def bars(market: Market, key: str, **kw: object) -> list:
    args = {"end": market.clock.now(), "what_to_show": "TRADES", "use_rth": True, "format_date": 1}
    args.update(kw)
    return market.bars(market.catalog.find(key), **args)


@pytest.mark.parametrize(
    ("duration", "bar_size", "count"),
    [
        ("60 S", "1 secs", 60),
        ("1 D", "1 min", 30),  # 09:30 to 10:00 of today's session
        ("1 D", "1 hour", 1),
        ("5 D", "1 hour", 4 * 7 + 1),  # four full RTH sessions of 7 hourly bars, plus today
        ("1 W", "1 day", 5),
        ("1 M", "1 day", 22),  # 26 Oct .. 24 Nov 2026, no holiday in between
        ("1 Y", "1 day", 251),
    ],
)
def test_bar_counts(duration: str, bar_size: str, count: int) -> None:
    assert len(bars(make_market(), "SPY", duration=duration, bar_size=bar_size)) == count


def test_bars_are_deterministic_and_consistent() -> None:
    first = bars(make_market(seed=3), "SPY", duration="5 D", bar_size="5 mins")
    again = bars(make_market(seed=3), "SPY", duration="5 D", bar_size="5 mins")
    assert first == again
    for bar in first:
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume > 0
        assert bar.count > 0


def test_intraday_date_formats() -> None:
    market = make_market()
    text = bars(market, "SPY", duration="1 D", bar_size="1 hour")
    assert text[0].date == "20261124 09:30:00 US/Eastern"
    epoch = bars(market, "SPY", duration="1 D", bar_size="1 hour", format_date=2)
    assert epoch[0].date == str(int(datetime(2026, 11, 24, 14, 30, tzinfo=UTC).timestamp()))


def test_daily_bars_skip_weekends_and_holidays() -> None:
    market = make_market(datetime(2026, 11, 30, 22, 0, tzinfo=UTC))
    dates = [b.date for b in bars(market, "SPY", duration="1 W", bar_size="1 day")]
    assert dates == ["20261124", "20261125", "20261127", "20261130"]


def test_daily_futures_bars_are_dated_by_trading_day() -> None:
    market = make_market(datetime(2026, 11, 25, 22, 0, tzinfo=UTC))
    dates = [b.date for b in bars(market, "MES", duration="2 D", bar_size="1 day", use_rth=False)]
    assert dates == ["20261124", "20261125"]


def test_extended_hours_bars_with_use_rth_false() -> None:
    market = make_market()
    first = bars(market, "SPY", duration="1 D", bar_size="1 hour", use_rth=False)[0]
    assert first.date == "20261124 04:00:00 US/Eastern"


def test_fx_midpoint_bars_and_trades_refused() -> None:
    market = make_market()
    mids = bars(market, "EUR.USD", duration="1 D", bar_size="1 hour", what_to_show="MIDPOINT")
    assert mids
    assert all(b.volume == -1 for b in mids)
    with pytest.raises(ValueError, match="TRADES"):
        bars(market, "EUR.USD", duration="1 D", bar_size="1 hour")


def test_bid_ask_bars_straddle_midpoint() -> None:
    market = make_market()
    mid = bars(market, "SPY", duration="1 D", bar_size="1 hour", what_to_show="MIDPOINT")[0]
    bid = bars(market, "SPY", duration="1 D", bar_size="1 hour", what_to_show="BID")[0]
    ask = bars(market, "SPY", duration="1 D", bar_size="1 hour", what_to_show="ASK")[0]
    assert bid.close < mid.close < ask.close


@pytest.mark.parametrize(
    "kw",
    [
        {"duration": "1 X", "bar_size": "1 min"},
        {"duration": "D 1", "bar_size": "1 min"},
        {"duration": "0 D", "bar_size": "1 min"},
        {"duration": "1 D", "bar_size": "7 mins"},
        {"duration": "1 D", "bar_size": "1 min", "what_to_show": "NOPE"},
        {"duration": "1 D", "bar_size": "1 min", "format_date": 3},
    ],
)
def test_bad_bar_requests(kw: dict) -> None:
    with pytest.raises(ValueError, match="Invalid"):
        bars(make_market(), "SPY", **kw)


def test_bars_never_reach_past_now() -> None:
    market = make_market()
    future_end = OPEN + timedelta(days=3)
    got = bars(market, "SPY", duration="1 D", bar_size="1 min", end=future_end)
    assert got[-1].date == "20261124 09:59:00 US/Eastern"


def test_sec_type_enum_values_used_by_catalog() -> None:
    market = make_market()
    kinds = {i.sec_type for i in market.catalog.listed()}
    assert kinds == {SecType.STOCK, SecType.CASH, SecType.FUTURE, SecType.INDEX, SecType.OPTION}
