"""The client library's normal public API against ibsim: data, orders, fills, accounts."""

from __future__ import annotations

import pytest

from tests.ibsim import iblib
from tests.ibsim.iblib import wait_for

pytestmark = pytest.mark.ib_client

ACCOUNT = "DU1234567"


@pytest.fixture
def spy(ib):
    contract = iblib.Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


def _filled(ib, trade, fills: int = 1):
    """Wait until the trade is Filled and every fill carries its commission report."""
    return wait_for(
        ib,
        lambda: (
            trade.orderStatus.status == "Filled"
            and len(trade.fills) >= fills
            and all(f.commissionReport.execId for f in trade.fills)
        ),
    )


# --- reference and market data ---------------------------------------------------------------


def test_contract_details(ib):
    [details] = ib.reqContractDetails(iblib.Stock("SPY", "SMART", "USD"))
    assert details.contract.conId == 756733
    assert details.contract.primaryExchange == "ARCA"
    assert details.longName
    assert details.timeZoneId
    [eur] = ib.reqContractDetails(iblib.Forex("EURUSD"))
    assert eur.contract.secType == "CASH"
    assert eur.contract.exchange == "IDEALPRO"
    futures = ib.reqContractDetails(iblib.Future("MES", exchange="CME"))
    assert len(futures) >= 2
    assert {d.contract.multiplier for d in futures} == {"5"}


def test_unknown_contract_is_error_200(ib):
    with pytest.raises(iblib.RequestError) as info:
        ib.reqContractDetails(iblib.Stock("NOSUCH", "SMART", "USD"))
    assert info.value.code == 200


def test_snapshot_tickers(ib, spy):
    eur = iblib.Forex("EURUSD")
    ib.qualifyContracts(eur)
    spy_ticker, eur_ticker = ib.reqTickers(spy, eur)
    assert 0 < spy_ticker.bid < spy_ticker.ask
    assert spy_ticker.last > 0
    assert spy_ticker.close > 0
    assert 0.5 < eur_ticker.bid < eur_ticker.ask < 2


def test_streaming_market_data_and_cancel(ib, spy, sim):
    ticker = ib.reqMktData(spy)
    wait_for(ib, lambda: ticker.bid > 0)
    first = ticker.bid
    sim.clock.advance(3600)
    wait_for(ib, lambda: ticker.bid != first)
    ib.cancelMktData(spy)


def test_delayed_market_data_type_still_gets_live_data_when_the_login_has_it(ib, spy):
    ib.reqMarketDataType(3)  # IB: live data wins when the user is subscribed to it
    [ticker] = ib.reqTickers(spy)
    assert ticker.marketDataType == 1
    assert ticker.bid > 0


def test_historical_bars(ib, spy):
    bars = ib.reqHistoricalData(
        spy, endDateTime="", durationStr="5 D", barSizeSetting="1 day",
        whatToShow="TRADES", useRTH=True,
    )  # fmt: skip
    assert 3 <= len(bars) <= 5
    assert all(b.low <= b.close <= b.high for b in bars)


def test_identical_historical_request_within_15s_is_pacing_error_162(ib, spy, sim):
    kwargs = dict(
        endDateTime="", durationStr="1 D", barSizeSetting="1 hour", whatToShow="MIDPOINT",
        useRTH=True,
    )  # fmt: skip
    assert ib.reqHistoricalData(spy, **kwargs)
    with pytest.raises(iblib.RequestError) as info:
        ib.reqHistoricalData(spy, **kwargs)
    assert info.value.code == 162
    sim.clock.advance(16)
    assert ib.reqHistoricalData(spy, **kwargs)


# --- orders ----------------------------------------------------------------------------------


def test_market_order_fills_with_exec_details_and_commission_carrying_order_ref(ib, spy):
    trade = ib.placeOrder(spy, iblib.MarketOrder("BUY", 10, orderRef="run-1/leg-1"))
    _filled(ib, trade)
    [fill] = trade.fills
    assert fill.execution.orderRef == "run-1/leg-1"
    assert fill.execution.shares == 10
    assert fill.execution.side == "BOT"
    assert fill.commissionReport.commission > 0
    assert trade.order.orderRef == "run-1/leg-1"


def test_marketable_limit_order_fills(ib, spy):
    [ticker] = ib.reqTickers(spy)
    trade = ib.placeOrder(spy, iblib.LimitOrder("SELL", 5, ticker.bid - 1, orderRef="lmt"))
    _filled(ib, trade)
    assert trade.fills[0].execution.price >= ticker.bid - 1
    assert trade.fills[0].execution.orderRef == "lmt"


def test_large_order_fills_in_partial_chunks(ib, spy):
    trade = ib.placeOrder(spy, iblib.MarketOrder("BUY", 2500, orderRef="big"))
    _filled(ib, trade, fills=3)
    assert [f.execution.shares for f in trade.fills] == [1000, 1000, 500]
    assert [f.execution.cumQty for f in trade.fills] == [1000, 2000, 2500]
    assert all(f.execution.orderRef == "big" for f in trade.fills)


def test_modify_then_cancel_then_cancel_again_is_10148(ib, spy):
    errors = []
    ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
    [ticker] = ib.reqTickers(spy)
    order = iblib.LimitOrder("BUY", 10, round(ticker.bid * 0.9, 2), orderRef="resting")
    trade = ib.placeOrder(spy, order)
    wait_for(ib, lambda: trade.orderStatus.status == "Submitted")
    order.totalQuantity = 20
    order.lmtPrice = round(ticker.bid * 0.8, 2)
    ib.placeOrder(spy, order)
    wait_for(ib, lambda: trade.orderStatus.remaining == 20)
    [open_trade] = [t for t in ib.reqOpenOrders() if t.order.orderId == order.orderId]
    assert open_trade.order.lmtPrice == order.lmtPrice
    ib.cancelOrder(order)
    wait_for(ib, lambda: trade.orderStatus.status == "Cancelled" and 202 in errors)
    ib.cancelOrder(order)
    wait_for(ib, lambda: 10148 in errors)


def test_rejection_is_error_201_with_reason(ib, spy):
    errors = []
    ib.errorEvent += lambda req_id, code, text, *rest: errors.append((code, text))
    trade = ib.placeOrder(spy, iblib.MarketOrder("BUY", 1_000_000))  # far beyond buying power
    wait_for(ib, lambda: trade.orderStatus.status == "Cancelled")
    [(_code, text)] = [e for e in errors if e[0] == 201]
    assert text.startswith("Order rejected - reason:")


def test_order_without_exchange_is_error_321(ib):
    errors = []
    ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
    ib.placeOrder(iblib.Stock(conId=756733), iblib.MarketOrder("BUY", 1))
    wait_for(ib, lambda: 321 in errors)


def test_completed_orders_and_executions(ib, spy):
    trade = ib.placeOrder(spy, iblib.MarketOrder("BUY", 3, orderRef="done"))
    _filled(ib, trade)
    completed = ib.reqCompletedOrders(apiOnly=False)
    [done] = [t for t in completed if t.order.orderRef == "done"]
    assert done.orderStatus.status == "Filled"
    assert done.order.filledQuantity == 3
    fills = ib.reqExecutions(iblib.ExecutionFilter(symbol="SPY"))
    assert [f.execution.orderRef for f in fills] == ["done"]
    # the library attaches commission reports to the fills it already knows (ib.fills())
    assert [f.commissionReport.commission > 0 for f in ib.fills()] == [True]
    assert ib.reqExecutions(iblib.ExecutionFilter(symbol="QQQ")) == []


def test_positions_portfolio_and_account_values_follow_fills(ib, spy):
    trade = ib.placeOrder(spy, iblib.MarketOrder("BUY", 50))
    _filled(ib, trade)
    wait_for(
        ib, lambda: any(p.position == 150 for p in ib.positions() if p.contract.conId == 756733)
    )
    wait_for(
        ib, lambda: any(i.position == 150 for i in ib.portfolio() if i.contract.conId == 756733)
    )
    cash = [v for v in ib.accountValues() if v.tag == "TotalCashValue" and v.currency == "USD"]
    assert cash
    assert float(cash[0].value) < 900000.0


def test_account_summary(ib):
    rows = ib.accountSummary(ACCOUNT)
    tags = {r.tag for r in rows}
    assert {"NetLiquidation", "TotalCashValue", "BuyingPower", "AvailableFunds"} <= tags
    assert all(r.account == ACCOUNT for r in rows)


def test_adaptive_market_order_is_accepted(ib, spy):
    order = iblib.MarketOrder("BUY", 1, orderRef="algo")
    order.algoStrategy = "Adaptive"
    order.algoParams = [iblib.TagValue("adaptivePriority", "Normal")]
    trade = ib.placeOrder(spy, order)
    _filled(ib, trade)
    assert trade.order.algoStrategy == "Adaptive"


def test_fx_and_future_orders_fill(ib):
    eur = iblib.Forex("EURUSD")
    [mes] = ib.reqContractDetails(iblib.Future("MES", exchange="CME"))[:1]
    ib.qualifyContracts(eur)
    fx = ib.placeOrder(eur, iblib.MarketOrder("BUY", 25000, orderRef="fx"))
    fut = ib.placeOrder(mes.contract, iblib.MarketOrder("BUY", 1, orderRef="fut"))
    _filled(ib, fx)
    _filled(ib, fut)
    assert fut.fills[0].commissionReport.commission > 0


def test_place_order_is_decoded_field_for_field(ib, spy, sim):
    """Whatever version was negotiated (178 ib_async, 176 ib_insync: with faProfile)."""
    order = iblib.LimitOrder("BUY", 7, 1.25, orderRef="decode-me", tif="GTC", outsideRth=True)
    order.account = ACCOUNT
    order.algoStrategy = "Adaptive"
    order.algoParams = [iblib.TagValue("adaptivePriority", "Urgent")]
    trade = ib.placeOrder(spy, order)
    wait_for(ib, lambda: trade.orderStatus.status == "Submitted")
    req = sim.broker.order(1, order.orderId).request
    assert (req.action, req.total_quantity, req.order_type, req.lmt_price) == (
        "BUY",
        7,
        "LMT",
        1.25,
    )
    assert (req.tif, req.outside_rth, req.order_ref, req.account) == (
        "GTC",
        True,
        "decode-me",
        ACCOUNT,
    )
    assert req.algo_strategy == "Adaptive"
    assert req.algo_params == (("adaptivePriority", "Urgent"),)
    assert req.contract.con_id == 756733
    assert req.contract.exchange == "SMART"


def test_stop_order_waits_presubmitted_and_ioc_cancels_its_rest(ib, spy):
    [ticker] = ib.reqTickers(spy)
    stop = ib.placeOrder(spy, iblib.StopOrder("BUY", 5, round(ticker.ask * 1.5, 2)))
    wait_for(ib, lambda: stop.orderStatus.status == "PreSubmitted")
    ioc = iblib.LimitOrder("BUY", 5, round(ticker.bid * 0.5, 2), tif="IOC")
    trade = ib.placeOrder(spy, ioc)
    wait_for(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert not trade.fills


def test_open_orders_of_all_clients(ib, spy, connect_client):
    other = connect_client(client_id=2)
    [ticker] = other.reqTickers(spy)
    resting = other.placeOrder(spy, iblib.LimitOrder("BUY", 1, round(ticker.bid * 0.5, 2)))
    wait_for(other, lambda: resting.orderStatus.status == "Submitted")
    assert resting.order.orderId in [t.order.orderId for t in ib.reqAllOpenOrders()]
    assert ib.reqOpenOrders() == []


# --- contract lookup as the gateway validates it -----------------------------------------------


def test_stock_contract_details_carry_isin_and_per_exchange_market_rules(ib):
    [details] = ib.reqContractDetails(iblib.Stock("SPY", "SMART", "USD"))
    assert [(t.tag, t.value) for t in details.secIdList] == [("ISIN", "US78462F1030")]
    exchanges = details.validExchanges.split(",")
    assert len(details.marketRuleIds.split(",")) == len(exchanges)
    assert "SMART" in exchanges
    assert (details.stockType, details.industry, details.category) == (
        "ETF",
        "Funds",
        "Equity Fund",
    )
    assert "LMT" in details.orderTypes.split(",")


def test_contract_lookup_by_isin(ib):
    lib = __import__(iblib.NAME)
    [details] = ib.reqContractDetails(lib.Contract(secIdType="ISIN", secId="US0378331005"))
    assert (details.contract.symbol, details.contract.conId) == ("AAPL", 265598)


@pytest.mark.parametrize(
    "fields",
    [{}, {"secType": "STK", "exchange": "SMART", "currency": "USD"}, {"exchange": "SMART"}],
)
def test_a_contract_naming_nothing_is_error_200_not_the_catalog(ib, fields):
    lib = __import__(iblib.NAME)
    with pytest.raises(iblib.RequestError) as info:
        ib.reqContractDetails(lib.Contract(**fields))
    assert info.value.code == 200


# --- order fields honoured ---------------------------------------------------------------------


def test_good_after_time_and_gtd_through_the_library(ib, spy, sim):
    later = iblib.MarketOrder("BUY", 5, goodAfterTime="20261118 11:00:00 US/Eastern")
    resting = iblib.LimitOrder("BUY", 5, 1.0, tif="GTD", goodTillDate="20261118 10:45:00 EST")
    later_trade, gtd_trade = ib.placeOrder(spy, later), ib.placeOrder(spy, resting)
    wait_for(ib, lambda: later_trade.orderStatus.status == "PreSubmitted")
    wait_for(ib, lambda: gtd_trade.orderStatus.status == "Submitted")
    assert sim.broker.order(1, later.orderId).request.good_after_time.endswith("US/Eastern")
    sim.clock.advance(20 * 60)  # 10:50 New York
    wait_for(ib, lambda: gtd_trade.orderStatus.status == "Cancelled")
    assert later_trade.orderStatus.status == "PreSubmitted"
    sim.clock.advance(10 * 60)  # 11:00
    wait_for(ib, lambda: later_trade.orderStatus.status == "Filled")


def test_cancel_unknown_order_is_10147_and_filled_order_10148(ib, spy):
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
    ghost = iblib.LimitOrder("BUY", 1, 1.0)
    ghost.orderId = 999_999
    ib.cancelOrder(ghost)
    done = ib.placeOrder(spy, iblib.MarketOrder("BUY", 1))
    _filled(ib, done)
    ib.cancelOrder(done.order)
    wait_for(ib, lambda: codes == [10147, 10148])


# --- the wider catalog -------------------------------------------------------------------------


def test_globex_alias_futures_vix_index_and_new_fx_pairs(ib):
    [mnq] = ib.reqContractDetails(iblib.Future("MNQ", "202612", "GLOBEX"))
    assert (mnq.contract.exchange, mnq.contract.multiplier) == ("CME", "2")
    trade = ib.placeOrder(mnq.contract, iblib.MarketOrder("BUY", 1, orderRef="mnq"))
    _filled(ib, trade)
    vix, cad = iblib.Index("VIX", "CBOE"), iblib.Forex("USDCAD")
    ib.qualifyContracts(vix, cad)
    vix_ticker, cad_ticker = ib.reqTickers(vix, cad)
    assert vix_ticker.last > 0
    assert 1.0 < cad_ticker.bid < cad_ticker.ask < 2.0
