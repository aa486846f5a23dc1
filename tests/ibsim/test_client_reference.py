"""No request leaves the client library waiting: reference data, empty answers, P&L."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from tests.ibsim import iblib
from tests.ibsim.iblib import wait_for

pytestmark = pytest.mark.ib_client

ACCOUNT = "DU1234567"
ANSWER_WITHIN = 2.0  # seconds; a hang is what these tests guard against
SPY = dict(symbol="SPY", exchange="SMART", currency="USD")


def _answer(ib, coro):
    return ib.run(asyncio.wait_for(coro, ANSWER_WITHIN))


@pytest.fixture
def spy(ib):
    contract = iblib.Stock(**SPY)
    ib.qualifyContracts(contract)
    return contract


# --- lists a gateway answers empty -----------------------------------------------------------


@pytest.mark.parametrize(
    ("request_name", "args"),
    [
        ("reqMktDepthExchangesAsync", ()),
        ("reqNewsProvidersAsync", ()),
        ("reqSmartComponentsAsync", ("a6",)),
        ("reqSecDefOptParamsAsync", ("QQQ", "", "STK", 320227571)),
        ("reqUserInfoAsync", ()),
    ],
)
def test_empty_answers_end_the_request(ib, request_name, args):
    assert not _answer(ib, getattr(ib, request_name)(*args))


def test_scanner_parameters_and_an_empty_scan(ib):
    xml = _answer(ib, ib.reqScannerParametersAsync())
    assert xml.startswith("<?xml")
    lib = __import__(iblib.NAME)
    scan = lib.ScannerSubscription(
        instrument="STK", locationCode="STK.US", scanCode="HOT_BY_VOLUME"
    )
    assert list(_answer(ib, ib.reqScannerDataAsync(scan))) == []


@pytest.mark.parametrize("what", ["TRADES", "BID_ASK", "MIDPOINT"])
def test_historical_ticks_are_empty_and_done(ib, spy, what):
    start = dt.datetime(2026, 11, 18, 15, 0, tzinfo=dt.UTC)
    assert _answer(ib, ib.reqHistoricalTicksAsync(spy, start, "", 100, what, True)) == []


def test_histogram_is_empty(ib, spy):
    assert _answer(ib, ib.reqHistogramDataAsync(spy, True, "1 week")) == []


def test_historical_news_is_empty(ib, spy):
    news = _answer(ib, ib.reqHistoricalNewsAsync(spy.conId, "BZ", "", "", 10))
    assert news is None or not news  # the libraries return None for "no headlines"


# --- errors tied to the request ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_name", "code"),
    [("reqFundamentalDataAsync", 430), ("calculateImpliedVolatilityAsync", 200)],
)
def test_unmodelled_data_is_an_error_for_that_request(ib, spy, request_name, code):
    args = {"reqFundamentalDataAsync": (spy, "ReportSnapshot"),
            "calculateImpliedVolatilityAsync": (spy, 5.0, 600.0)}[request_name]  # fmt: skip
    with pytest.raises(iblib.RequestError) as info:
        _answer(ib, getattr(ib, request_name)(*args))
    assert info.value.code == code


def test_news_article_is_an_error_for_that_request(ib):
    with pytest.raises(iblib.RequestError) as info:
        _answer(ib, ib.reqNewsArticleAsync("BZ", "BZ$123"))
    assert info.value.code == 10172


# --- modelled reference data -----------------------------------------------------------------


def test_market_rule_matches_the_contracts_tick(ib):
    [details] = ib.reqContractDetails(iblib.Stock(**SPY))
    rule = int(details.marketRuleIds.split(",")[0])
    [increment] = _answer(ib, ib.reqMarketRuleAsync(rule))
    assert (increment.lowEdge, increment.increment) == (0.0, details.minTick)
    assert _answer(ib, ib.reqMarketRuleAsync(999_999)) == []


def test_jpy_pairs_have_their_own_market_rule(ib):
    [eur] = ib.reqContractDetails(iblib.Forex("EURUSD"))
    [jpy] = ib.reqContractDetails(iblib.Forex("USDJPY"))
    assert eur.marketRuleIds != jpy.marketRuleIds
    [increment] = _answer(ib, ib.reqMarketRuleAsync(int(jpy.marketRuleIds)))
    assert increment.increment == jpy.minTick


def test_matching_symbols(ib):
    found = _answer(ib, ib.reqMatchingSymbolsAsync("AAP"))
    assert [(d.contract.symbol, d.contract.secType) for d in found] == [("AAPL", "STK")]
    assert found[0].contract.conId == 265598
    assert _answer(ib, ib.reqMatchingSymbolsAsync("ZZZZ")) == []


def test_head_timestamp(ib, spy):
    head = _answer(ib, ib.reqHeadTimeStampAsync(spy, "TRADES", True, 1))
    assert head == dt.datetime(2005, 1, 3, 14, 30)
    epoch = _answer(ib, ib.reqHeadTimeStampAsync(spy, "TRADES", True, 2))
    assert epoch == dt.datetime(2005, 1, 3, 14, 30, tzinfo=dt.UTC)


def test_head_timestamp_of_an_unknown_contract_is_error_200(ib):
    with pytest.raises(iblib.RequestError) as info:
        _answer(ib, ib.reqHeadTimeStampAsync(iblib.Stock("NOSUCH", "SMART", "USD"), "TRADES", 1, 1))
    assert info.value.code == 200


# --- P&L from the ledger ---------------------------------------------------------------------


def test_pnl_and_pnl_single_follow_the_ledger(ib, spy, sim):
    pnl = ib.reqPnL(ACCOUNT)
    single = ib.reqPnLSingle(ACCOUNT, "", spy.conId)
    wait_for(ib, lambda: single.position == 100)  # the default scenario holds 100 SPY
    assert single.value > 0
    assert single.unrealizedPnL == pytest.approx(pnl.unrealizedPnL - _others(sim), abs=0.02)
    trade = ib.placeOrder(spy, iblib.MarketOrder("SELL", 100))
    wait_for(ib, lambda: trade.orderStatus.status == "Filled")
    wait_for(ib, lambda: single.position == 0 and single.realizedPnL != 0)
    wait_for(ib, lambda: pnl.realizedPnL == single.realizedPnL)


def _others(sim) -> float:
    """Unrealized P&L of the default scenario's positions other than SPY."""
    items = sim.broker.portfolio(ACCOUNT)
    return sum(i.unrealized_pnl for i in items if i.instrument.symbol != "SPY")
