"""SPY's option chain through the client library: chain, contracts, greeks, a trade."""

from __future__ import annotations

import pytest

from tests.ibsim import iblib
from tests.ibsim.iblib import wait_for

pytestmark = pytest.mark.ib_client

ACCOUNT = "DU1234567"
EXPIRY = "20261120"  # the Friday after the fixture clock's Wednesday


@pytest.fixture
def spy(ib):
    contract = iblib.Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


@pytest.fixture
def call(ib, spy):
    """The at-the-money call of the nearest expiry, qualified."""
    [ticker] = ib.reqTickers(spy)
    strike = round(ticker.last / 5) * 5
    contract = iblib.Option("SPY", EXPIRY, strike, "C", "SMART")
    ib.qualifyContracts(contract)
    return contract


def test_sec_def_opt_params_lists_the_chain(ib, spy):
    [params] = ib.reqSecDefOptParams("SPY", "", "STK", spy.conId)
    assert (params.exchange, params.tradingClass, params.multiplier) == ("SMART", "SPY", "100")
    assert int(params.underlyingConId) == spy.conId  # the libraries keep it as text
    assert params.expirations[0] == EXPIRY
    assert len(params.expirations) == 4
    assert (min(params.strikes), max(params.strikes), len(params.strikes)) == (480, 720, 49)


def test_option_contract_details(ib, call, spy):
    [details] = ib.reqContractDetails(call)
    c = details.contract
    assert (c.secType, c.right, c.multiplier, c.tradingClass) == ("OPT", "C", "100", "SPY")
    assert c.localSymbol.startswith("SPY   261120C")
    assert details.underConId == spy.conId
    assert (details.underSymbol, details.underSecType) == ("SPY", "STK")


def test_option_market_data_carries_greeks(ib, call):
    ticker = ib.reqMktData(call)
    wait_for(ib, lambda: ticker.modelGreeks and ticker.bidGreeks and ticker.askGreeks)
    model = ticker.modelGreeks
    assert 0.3 < model.delta < 0.7  # at the money
    assert model.impliedVol == pytest.approx(0.18)
    assert ticker.bid <= model.optPrice <= ticker.ask
    assert ticker.bidGreeks.impliedVol < model.impliedVol < ticker.askGreeks.impliedVol
    ib.cancelMktData(call)


def test_calculate_implied_vol_and_option_price(ib, call, spy):
    [underlying] = ib.reqTickers(spy)
    priced = ib.calculateOptionPrice(call, 0.25, underlying.last)
    assert priced.optPrice > 0
    solved = ib.calculateImpliedVolatility(call, priced.optPrice, underlying.last)
    assert solved.impliedVol == pytest.approx(0.25, abs=1e-4)


def test_buy_a_call_and_hold_it(ib, call):
    trade = ib.placeOrder(call, iblib.MarketOrder("BUY", 2, orderRef="opt"))
    wait_for(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills)
    wait_for(ib, lambda: trade.fills[0].commissionReport.commission == 1.30)
    wait_for(ib, lambda: any(p.contract.conId == call.conId for p in ib.positions()))
    [held] = [p for p in ib.positions() if p.contract.conId == call.conId]
    assert (held.position, held.contract.right, held.contract.strike) == (2, "C", call.strike)
    wait_for(ib, lambda: _option_value(ib) > 0)


def _option_value(ib) -> float:
    values = {(v.tag, v.currency): v.value for v in ib.accountValues()}
    return float(values.get(("OptionMarketValue", "BASE"), 0))


def test_what_if_written_put_margin(ib, spy, call):
    [underlying] = ib.reqTickers(spy)
    put = iblib.Option("SPY", EXPIRY, call.strike, "P", "SMART")
    ib.qualifyContracts(put)
    state = ib.whatIfOrder(put, iblib.MarketOrder("SELL", 1))
    expected = 100 * underlying.last * 0.25
    assert float(state.initMarginChange) == pytest.approx(expected, rel=0.01)
