"""Market data through the client library: generic ticks, mdoff, market data types."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from tests.ibsim import iblib
from tests.ibsim.iblib import wait_for

pytestmark = pytest.mark.ib_client

NIGHT = datetime(2026, 11, 19, 3, 0, tzinfo=UTC)  # 22:00 New York


@pytest.fixture
def spy(ib):
    contract = iblib.Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


def test_generic_ticks_fill_the_ticker(ib, spy):
    ticker = ib.reqMktData(spy, "233,236,165")
    wait_for(ib, lambda: ticker.rtTime and ticker.avVolume > 0 and ticker.shortableShares > 0)
    assert ticker.vwap > 0
    assert getattr(ticker, "shortable", 3.0) == 3.0  # ib_insync 0.9.86 does not keep tick 46
    assert 0 < ticker.low52week <= ticker.low13week <= ticker.high13week <= ticker.high52week
    assert ticker.bid > 0
    ib.cancelMktData(spy)


def test_mdoff_leaves_top_of_book_empty(ib, spy):
    ticker = ib.reqMktData(spy, "mdoff,233")
    wait_for(ib, lambda: ticker.rtTime)
    assert math.isnan(ticker.bid)
    assert ticker.last > 0  # from the RT volume tick
    ib.cancelMktData(spy)


def test_frozen_market_data_type_switches_after_hours(ib, spy, sim):
    ib.reqMarketDataType(2)
    ticker = ib.reqMktData(spy)
    wait_for(ib, lambda: ticker.bid > 0)
    assert ticker.marketDataType == 1  # live while the market trades
    sim.clock.set(NIGHT)
    wait_for(ib, lambda: ticker.marketDataType == 2)
    ib.cancelMktData(spy)


# --- keepUpToDate historical bars --------------------------------------------------------------


def test_keep_up_to_date_bars_update_the_forming_bar_until_cancelled(ib, spy, sim):
    bars = ib.reqHistoricalData(spy, "", "1800 S", "1 min", "TRADES", True, keepUpToDate=True)
    assert len(bars) == 30
    updates: list[bool] = []
    bars.updateEvent += lambda _bars, has_new_bar: updates.append(has_new_bar)
    sim.clock.advance(5)  # a new minute has begun: its bar appears
    wait_for(ib, lambda: updates == [True])
    sim.clock.advance(5)  # the same bar, five seconds on
    wait_for(ib, lambda: updates == [True, False])
    assert len(bars) == 31
    assert bars[-1].volume > 0
    ib.cancelHistoricalData(bars)
    sim.clock.advance(60)
    ib.reqCurrentTime()
    ib.sleep(0.1)
    assert updates == [True, False]


def test_keep_up_to_date_needs_an_empty_end(ib, spy):
    with pytest.raises(iblib.RequestError) as info:
        ib.reqHistoricalData(
            spy, "20261118 10:00:00 US/Eastern", "1800 S", "1 min", "TRADES", True,
            keepUpToDate=True,
        )  # fmt: skip
    assert info.value.code == 162


# --- market depth ------------------------------------------------------------------------------


@pytest.mark.parametrize("smart", [False, True])
def test_market_depth_book_around_the_quote(ib, spy, sim, smart):
    [top] = ib.reqTickers(spy)
    ticker = ib.reqMktDepth(spy, 5, isSmartDepth=smart)
    wait_for(ib, lambda: len(ticker.domBids) == 5 and len(ticker.domAsks) == 5)
    bids, asks = [d.price for d in ticker.domBids], [d.price for d in ticker.domAsks]
    assert (bids[0], asks[0]) == (top.bid, top.ask)
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert all(d.size > 0 for d in ticker.domBids + ticker.domAsks)
    assert {d.marketMaker for d in ticker.domBids} == ({"SMART"} if smart else {""})
    before = [d.size for d in ticker.domBids]
    sim.clock.advance(1)
    wait_for(ib, lambda: [d.size for d in ticker.domBids] != before)
    ib.cancelMktDepth(spy, isSmartDepth=smart)


def test_index_has_no_depth(ib):
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
    spx = iblib.Index("SPX", "CBOE")
    ib.qualifyContracts(spx)
    ib.reqMktDepth(spx, 5)
    wait_for(ib, lambda: codes == [10092])
