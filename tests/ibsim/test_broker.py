"""The paper broker: order lifecycle, rejections, ledger numbers, persistence and fault hooks."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ibsim import scenario as scenario_mod
from ibsim.broker import Broker
from ibsim.ledger import Ledger
from ibsim.market import Catalog, Clock, Market
from ibsim.model import (
    BrokerEvents,
    ContractQuery,
    ExecutionFilter,
    NotCancellable,
    Order,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    Quote,
)

OPEN = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York
SATURDAY = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
ACCOUNT = "DU1234567"
SPY = ContractQuery(symbol="SPY", sec_type="STK", exchange="SMART", currency="USD")
MES = ContractQuery(symbol="MES", sec_type="FUT", exchange="CME", last_trade_date="202612")
EURUSD = ContractQuery(symbol="EUR", sec_type="CASH", exchange="IDEALPRO", currency="USD")
EXEC_ID = re.compile(r"^[0-9a-f]{8}\.[0-9a-f]{8}\.[0-9a-f]{2,}\.01$")


@dataclasses.dataclass
class Recorder:
    """Collects broker events (shared helper for this file)."""

    statuses: list = dataclasses.field(default_factory=list)
    fills: list = dataclasses.field(default_factory=list)
    accounts: list = dataclasses.field(default_factory=list)

    def events(self) -> BrokerEvents:
        events = BrokerEvents()
        events.order_status.append(lambda o: self.statuses.append((o.key, o.status, o.filled)))
        events.fill.append(lambda o, f: self.fills.append(f))
        events.account_changed.append(self.accounts.append)
        return events


def make_broker(
    name: str = "default",
    when: datetime = OPEN,
    state_path: Path | None = None,
    clock: Clock | None = None,
    **options: object,
) -> tuple[Broker, Recorder]:
    """A broker on a frozen clock with scenario options overridden."""
    sc = scenario_mod.load(name)
    sc = dataclasses.replace(sc, options=dataclasses.replace(sc.options, **options))
    clock = clock or Clock(when, frozen=True)
    market = Market(Catalog.builtin(), clock, seed=sc.seed, price_seeds=sc.price_seeds)
    recorder = Recorder()
    return Broker(market, sc, recorder.events(), state_path=state_path), recorder


def req(
    order_id: int,
    contract: ContractQuery = SPY,
    action: str = "BUY",
    qty: float = 100,
    order_type: str = "MKT",
    client_id: int = 1,
    **kw: object,
) -> OrderRequest:
    """An order request with test defaults (100 SPY at market for client 1)."""
    return OrderRequest(client_id, order_id, contract, action, qty, order_type, **kw)


def quote(broker: Broker, contract: ContractQuery = SPY) -> Quote:
    (inst,) = broker.market.catalog.resolve(contract)
    return broker.market.quote(inst)


def values(broker: Broker, account: str = ACCOUNT) -> dict[tuple[str, str], str]:
    return {(v.key, v.currency): v.value for v in broker.account_values(account)}


def cash(broker: Broker, currency: str = "USD", account: str = ACCOUNT) -> float:
    return broker.ledger.books[account].cash.get(currency, 0.0)


# --- order ids -------------------------------------------------------------------------
def test_ids_start_at_one_and_follow_placed_orders() -> None:
    broker, _ = make_broker()
    assert broker.next_valid_id(1) == 1
    broker.place(req(5, order_type="LMT", lmt_price=1.0))
    assert broker.next_valid_id(1) == 6
    assert broker.reserve_ids(1, 10) == 6
    assert broker.next_valid_id(2) == 1  # per clientId


def test_duplicate_id_is_103_but_modify_is_allowed() -> None:
    broker, _ = make_broker()
    broker.place(req(1, order_type="LMT", lmt_price=1.0))
    modified = broker.place(req(1, order_type="LMT", lmt_price=2.0, qty=50))
    assert modified.request.lmt_price == 2.0
    assert modified.request.total_quantity == 50
    broker.place(req(2))
    broker.process()
    with pytest.raises(OrderRejected) as err:
        broker.place(req(2))  # filled: terminal, so a re-send is a reuse
    assert err.value.code == 103


def test_rolled_back_ids_are_still_refused() -> None:
    broker, _ = make_broker()
    for order_id in (1, 2, 3):
        broker.place(req(order_id, order_type="LMT", lmt_price=1.0))
    broker.cancel(1, 2)
    broker.roll_back_ids(1, by=3)
    assert broker.next_valid_id(1) == 1
    for used in (2, 1):  # 2 is terminal, 1 working but re-sent as a new contract => 105
        with pytest.raises(OrderRejected) as err:
            broker.place(req(used, contract=MES if used == 1 else SPY))
        assert err.value.code == (105 if used == 1 else 103)
    broker.place(req(3, order_type="LMT", lmt_price=1.5))  # modify of a working order: fine
    assert broker.place(req(4)).key == (1, 4)


def test_rejected_order_burns_its_id() -> None:
    broker, _ = make_broker()
    with pytest.raises(OrderRejected):
        broker.place(req(7, qty=0))
    assert broker.next_valid_id(1) == 8
    with pytest.raises(OrderRejected) as err:
        broker.place(req(7))
    assert err.value.code == 103


# --- fills -----------------------------------------------------------------------------
def test_market_buy_fills_at_ask_and_books_cash() -> None:
    broker, rec = make_broker()
    ask = quote(broker).ask
    order = broker.place(req(1, qty=100, order_ref="intent-42"))
    assert order.status == OrderStatus.SUBMITTED
    assert order.request.account == ACCOUNT
    broker.process()
    assert order.status == OrderStatus.FILLED
    assert order.avg_fill_price == ask
    (fill,) = rec.fills
    assert (fill.side, fill.shares, fill.price, fill.order_ref) == ("BOT", 100, ask, "intent-42")
    assert fill.commission == 0.35
    assert fill.realized_pnl is None
    assert EXEC_ID.match(fill.exec_id)
    assert fill.time == "20261124 15:00:00 UTC"
    assert cash(broker) == pytest.approx(900_000 - 100 * ask - 0.35)
    spy = next(p for p in broker.positions() if p.instrument.symbol == "SPY")
    # 100 held at 580 plus 100 bought at ask with 0.35 commission folded into the cost.
    assert spy.quantity == 200
    assert spy.avg_cost == pytest.approx((58_000 + 100 * ask + 0.35) / 200)
    assert order.completed_status == "Filled"
    assert order.completed_time
    assert rec.accounts == [ACCOUNT]
    assert [s[1] for s in rec.statuses] == [OrderStatus.SUBMITTED, OrderStatus.FILLED]


def test_market_sell_realizes_pnl_against_average_cost() -> None:
    broker, rec = make_broker()
    bid = quote(broker).bid
    broker.place(req(1, action="SELL", qty=40))
    broker.process()
    (fill,) = rec.fills
    assert fill.side == "SLD"
    assert fill.price == bid
    assert fill.realized_pnl == pytest.approx(round((bid - 580.0) * 40 - 0.35, 2))
    item = next(p for p in broker.portfolio(ACCOUNT) if p.instrument.symbol == "SPY")
    assert item.position == 60
    assert item.realized_pnl == pytest.approx((bid - 580) * 40 - 0.35)
    assert cash(broker) == pytest.approx(900_000 + 40 * bid - 0.35)


def test_large_order_fills_in_chunks_with_order_level_commission() -> None:
    broker, rec = make_broker()
    order = broker.place(req(1, qty=2500))
    for expected in (1000, 2000, 2500):
        broker.process()
        assert order.filled == expected
    broker.process()  # nothing left to do
    assert [f.shares for f in rec.fills] == [1000, 1000, 500]
    assert [f.commission for f in rec.fills] == [3.5, 3.5, 1.75]  # 2500 x 0.0035 = 8.75
    assert [f.cum_qty for f in rec.fills] == [1000, 2000, 2500]
    assert len({f.exec_id for f in rec.fills}) == 3
    assert order.commission == 8.75
    assert [s[1] for s in rec.statuses].count(OrderStatus.SUBMITTED) == 3


def test_stock_commission_cap_is_one_percent_of_value() -> None:
    broker, rec = make_broker()
    broker.place(req(1, contract=ContractQuery(symbol="VIXY", exchange="SMART"), qty=1))
    broker.process()
    price = rec.fills[0].price
    assert rec.fills[0].commission == round(min(0.35, 0.01 * price), 2)


def test_limit_order_waits_until_crossed_and_fills_at_the_touch() -> None:
    broker, rec = make_broker()
    q = quote(broker)
    order = broker.place(req(1, order_type="LMT", lmt_price=q.bid - 1.0))
    broker.process()
    assert order.status == OrderStatus.SUBMITTED
    assert not rec.fills
    broker.place(req(1, order_type="LMT", lmt_price=q.ask + 1.0))  # modify to marketable
    broker.process()
    assert order.status == OrderStatus.FILLED
    assert rec.fills[0].price == q.ask
    assert rec.fills[0].liquidity == 1


def test_sell_limit_crossing() -> None:
    broker, rec = make_broker()
    q = quote(broker)
    order = broker.place(req(1, action="SELL", qty=10, order_type="LMT", lmt_price=q.bid + 5))
    broker.process()
    assert not rec.fills
    broker.place(req(1, action="SELL", qty=10, order_type="LMT", lmt_price=q.bid))
    broker.process()
    assert order.status == OrderStatus.FILLED
    assert rec.fills[0].price == q.bid


def test_stop_triggers_when_last_touches_stop() -> None:
    broker, rec = make_broker()
    stop = quote(broker).last + 0.05
    order = broker.place(req(1, order_type="STP", aux_price=stop))
    assert order.status == OrderStatus.PRE_SUBMITTED
    for _ in range(360):  # walk the clock a minute at a time until the price gets there
        broker.process()
        if order.status == OrderStatus.FILLED:
            break
        assert quote(broker).last < stop
        broker.market.clock.advance(60)
    assert order.triggered
    assert order.status == OrderStatus.FILLED
    assert rec.fills[0].price == quote(broker).ask
    assert OrderStatus.SUBMITTED in [s[1] for s in rec.statuses]


def test_stop_limit_triggers_then_rests_as_limit() -> None:
    broker, rec = make_broker()
    q = quote(broker)
    order = broker.place(
        req(
            1,
            action="SELL",
            qty=10,
            order_type="STP LMT",
            aux_price=q.last + 1,
            lmt_price=q.bid + 50,
        )
    )
    assert order.triggered
    assert order.status == OrderStatus.SUBMITTED
    broker.process()
    assert not rec.fills
    broker.place(
        req(
            1,
            action="SELL",
            qty=10,
            order_type="STP LMT",
            aux_price=q.last + 1,
            lmt_price=q.bid - 1,
        )
    )
    broker.process()
    assert order.status == OrderStatus.FILLED
    assert rec.fills[0].price == q.bid


def test_ioc_unmarketable_is_cancelled() -> None:
    broker, rec = make_broker()
    order = broker.place(req(1, order_type="LMT", lmt_price=quote(broker).bid - 5, tif="IOC"))
    broker.process()
    assert order.status == OrderStatus.CANCELLED
    assert not rec.fills


def test_ioc_cancels_remainder_after_one_chunk() -> None:
    broker, _rec = make_broker()
    order = broker.place(req(1, qty=1500, tif="IOC"))
    broker.process()
    assert order.filled == 1000
    assert order.status == OrderStatus.CANCELLED
    assert order.completed_status == "Cancelled"


def test_day_order_expires_at_the_close_and_gtc_stays() -> None:
    broker, _ = make_broker()
    low = quote(broker).bid - 50
    day = broker.place(req(1, order_type="LMT", lmt_price=low))
    gtc = broker.place(req(2, order_type="LMT", lmt_price=low, tif="GTC"))
    broker.market.clock.set(datetime(2026, 11, 24, 21, 0, 1, tzinfo=UTC))  # 16:00:01 New York
    broker.process()
    assert day.status == OrderStatus.CANCELLED
    assert gtc.status == OrderStatus.PRE_SUBMITTED  # waiting for the next session
    assert [o.key for o in broker.open_orders()] == [(1, 2)]


def test_modify_tif_moves_the_expiry() -> None:
    broker, _ = make_broker()
    order = broker.place(req(1, order_type="LMT", lmt_price=1.0))
    assert order.good_until is not None
    broker.place(req(1, order_type="LMT", lmt_price=1.0, tif="GTC"))
    assert order.good_until is None
    broker.place(req(1, order_type="LMT", lmt_price=1.0, tif="DAY"))
    assert order.good_until == datetime(2026, 11, 24, 21, 0, tzinfo=UTC).timestamp()


def test_orders_wait_for_the_open_unless_outside_rth() -> None:
    broker, rec = make_broker(when=datetime(2026, 11, 24, 13, 0, tzinfo=UTC))  # 08:00 NY
    regular = broker.place(req(1))
    extended = broker.place(req(2, order_type="LMT", lmt_price=10_000, outside_rth=True))
    broker.process()
    assert regular.status == OrderStatus.PRE_SUBMITTED
    assert "until the market opens" in regular.warning_text
    assert extended.status == OrderStatus.FILLED
    broker.market.clock.set(OPEN)
    broker.process()
    assert regular.status == OrderStatus.FILLED
    assert len(rec.fills) == 2


def test_weekend_market_order_is_held_or_rejected_by_option() -> None:
    broker, _ = make_broker(when=SATURDAY)
    held = broker.place(req(1))
    broker.process()
    assert held.status == OrderStatus.PRE_SUBMITTED
    assert held.filled == 0
    strict, _ = make_broker(when=SATURDAY, reject_day_mkt_when_closed=True)
    with pytest.raises(OrderRejected, match="market is closed") as err:
        strict.place(req(1))
    assert err.value.code == 201
    strict.place(req(2, tif="GTC"))  # only DAY market orders are refused


def test_adaptive_algo_accepted() -> None:
    broker, _ = make_broker()
    order = broker.place(
        req(1, algo_strategy="Adaptive", algo_params=(("adaptivePriority", "Normal"),))
    )
    broker.process()
    assert order.status == OrderStatus.FILLED


def test_fills_frozen_and_disconnected_fills() -> None:
    broker, rec = make_broker()
    broker.fills_frozen = True
    order = broker.place(req(1))
    broker.process()
    assert order.filled == 0
    broker.fills_frozen = False
    broker.process()
    assert order.status == OrderStatus.FILLED
    assert len(rec.fills) == 1


# --- modify and cancel ----------------------------------------------------------------
def test_modify_rules() -> None:
    broker, _ = make_broker()
    broker.place(req(1, qty=2500, order_type="LMT", lmt_price=quote(broker).ask + 1))
    broker.process()  # 1000 filled
    with pytest.raises(OrderRejected) as err:
        broker.place(req(1, qty=500, order_type="LMT", lmt_price=1.0))
    assert err.value.code == 201
    with pytest.raises(OrderRejected) as err:
        broker.place(req(1, action="SELL", qty=2500, order_type="LMT", lmt_price=1.0))
    assert err.value.code == 105
    order = broker.place(req(1, qty=1200, order_type="LMT", lmt_price=quote(broker).ask + 1))
    broker.process()
    assert order.status == OrderStatus.FILLED
    assert order.filled == 1200


def test_cancel_and_not_cancellable() -> None:
    broker, rec = make_broker()
    broker.place(req(1, order_type="LMT", lmt_price=1.0, order_ref="keep-me"))
    cancelled = broker.cancel(1, 1)
    assert cancelled.status == OrderStatus.CANCELLED
    assert cancelled.completed_status == "Cancelled by Trader"
    assert cancelled.completed_time == "20261124 15:00:00 UTC"
    assert rec.statuses[-1] == ((1, 1), OrderStatus.CANCELLED, 0)
    (completed,) = broker.completed_orders()
    assert completed.request.order_ref == "keep-me"
    with pytest.raises(NotCancellable):
        broker.cancel(1, 1)
    with pytest.raises(NotCancellable):
        broker.cancel(1, 99)
    with pytest.raises(NotCancellable):
        broker.cancel(2, 1)  # another client's id space


# --- rejections -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_kw", "code", "text"),
    [
        ({"contract": ContractQuery(symbol="NOPE", exchange="SMART")}, 200, "security definition"),
        ({"contract": ContractQuery(symbol="MES", exchange="CME")}, 200, "ambiguous"),
        ({"contract": ContractQuery(symbol="SPY")}, 321, "Missing order exchange"),
        ({"contract": ContractQuery(symbol="SPX", exchange="CBOE")}, 201, "not tradable"),
        ({"qty": 0}, 201, "quantity must be positive"),
        ({"qty": -5}, 201, "quantity must be positive"),
        ({"action": "SHORT"}, 201, "Invalid action"),
        ({"order_type": "TRAIL"}, 201, "Unsupported order type"),
        ({"tif": "FOK"}, 201, "time in force"),
        ({"order_type": "LMT"}, 201, "limit price"),
        ({"order_type": "STP"}, 201, "stop price"),
        ({"order_type": "STP LMT", "lmt_price": 1.0}, 201, "stop price"),
        ({"algo_strategy": "Vwap"}, 201, "algo"),
        ({"account": "DU9999999"}, 201, "account code"),
        ({"qty": 100_000}, 201, "insufficient buying power"),
    ],
)
def test_rejections(request_kw: dict, code: int, text: str) -> None:
    broker, rec = make_broker()
    with pytest.raises(OrderRejected, match=text) as err:
        broker.place(req(1, **request_kw))
    assert err.value.code == code
    assert err.value.reason == str(err.value)
    assert not broker.open_orders()
    assert not rec.statuses


def test_reject_next_fault_hook() -> None:
    broker, _ = make_broker()
    broker.reject_next("simulated outage")
    with pytest.raises(OrderRejected, match="simulated outage") as err:
        broker.place(req(1))
    assert err.value.code == 201
    assert broker.place(req(2)).status == OrderStatus.SUBMITTED


def test_two_accounts_need_an_account_and_keep_books_apart() -> None:
    broker, _ = make_broker("two_accounts")
    assert broker.accounts == ["DU1111111", "DU2222222"]
    with pytest.raises(OrderRejected) as err:
        broker.place(req(1))
    assert err.value.code == 436
    broker.place(req(2, qty=10, account="DU2222222"))
    broker.process()
    by_account = {(p.account, p.instrument.symbol): p.quantity for p in broker.positions()}
    assert by_account == {
        ("DU1111111", "SPY"): 50,
        ("DU2222222", "QQQ"): -30,
        ("DU2222222", "SPY"): 10,
    }
    assert broker.account_values("DU0000000") == []
    assert broker.portfolio("DU0000000") == []


def test_reducing_orders_skip_the_buying_power_check() -> None:
    broker, _ = make_broker()
    broker.place(req(1, action="SELL", qty=100))  # closes the SPY position: no margin needed
    broker.ledger.books[ACCOUNT].cash["USD"] = -10_000_000.0
    with pytest.raises(OrderRejected, match="buying power"):
        broker.place(req(2, qty=1))
    assert broker.place(req(3, action="SELL", qty=100)).status == OrderStatus.SUBMITTED


# --- ledger numbers ----------------------------------------------------------------------
def test_account_values_by_hand() -> None:
    broker, _ = make_broker()
    marks = {p.instrument.symbol: p.market_price for p in broker.portfolio(ACCOUNT)}
    stock_value = 100 * marks["SPY"] + 50 * marks["AAPL"] + 200 * marks["TLT"]
    nlv = 900_000 + stock_value
    init = 0.25 * stock_value
    v = values(broker)
    assert float(v[("NetLiquidation", "USD")]) == pytest.approx(nlv, abs=0.01)
    assert float(v[("TotalCashValue", "USD")]) == 900_000
    assert float(v[("GrossPositionValue", "USD")]) == pytest.approx(stock_value, abs=0.01)
    assert float(v[("InitMarginReq", "USD")]) == pytest.approx(init, abs=0.01)
    assert float(v[("AvailableFunds", "USD")]) == pytest.approx(nlv - init, abs=0.01)
    assert float(v[("ExcessLiquidity", "USD")]) == pytest.approx(nlv - init, abs=0.01)
    assert float(v[("BuyingPower", "USD")]) == pytest.approx(4 * (nlv - init), abs=0.05)
    assert float(v[("EquityWithLoanValue", "USD")]) == pytest.approx(nlv, abs=0.01)
    unrealized = (
        100 * (marks["SPY"] - 580) + 50 * (marks["AAPL"] - 210) + 200 * (marks["TLT"] - 92.5)
    )
    assert float(v[("UnrealizedPnL", "BASE")]) == pytest.approx(unrealized, abs=0.01)
    assert v[("CashBalance", "USD")] == v[("CashBalance", "BASE")] == "900000.00"
    assert v[("ExchangeRate", "USD")] == "1.00"
    assert v[("AccountCode", "")] == ACCOUNT
    assert v[("NetLiquidation-S", "USD")] == v[("NetLiquidation", "USD")]
    assert v[("NetLiquidation-C", "USD")] == "0.00"


def test_multi_currency_values_convert_to_base() -> None:
    broker, _ = make_broker("multi_currency")
    account, market = "DU2345678", broker.market
    rate = {c: market.fx_rate(c, "EUR") for c in ("EUR", "USD", "GBP", "JPY")}
    book = {"EUR": 400_000, "USD": 150_000, "GBP": 40_000, "JPY": 5_000_000}
    total_cash = sum(book[c] * rate[c] for c in book)
    spy_value = 40 * next(
        p.market_price for p in broker.portfolio(account) if p.instrument.symbol == "SPY"
    )
    v = values(broker, account)
    assert float(v[("TotalCashValue", "EUR")]) == pytest.approx(total_cash, abs=0.01)
    assert float(v[("NetLiquidation", "EUR")]) == pytest.approx(
        total_cash + spy_value * rate["USD"], abs=0.01
    )
    assert float(v[("ExchangeRate", "JPY")]) == pytest.approx(rate["JPY"], rel=1e-6)
    assert float(v[("NetLiquidationByCurrency", "USD")]) == pytest.approx(
        150_000 + spy_value, abs=0.01
    )
    assert float(v[("StockMarketValue", "BASE")]) == pytest.approx(
        spy_value * rate["USD"], abs=0.01
    )
    assert v[("Currency", "EUR")] == "EUR"
    # FX positions are views of cash: 3% margin on their base value, nothing added to NLV.
    fx = 50_000 * rate["EUR"] + 20_000 * rate["GBP"] + 30_000 * rate["USD"]
    assert float(v[("InitMarginReq", "EUR")]) == pytest.approx(
        0.03 * fx + 0.25 * spy_value * rate["USD"], abs=0.01
    )


def test_fx_trade_moves_both_currencies() -> None:
    broker, rec = make_broker()
    q = quote(broker, EURUSD)
    order = broker.place(req(1, contract=EURUSD, qty=25_000))
    broker.process()
    assert order.warning_text == ""
    assert rec.fills[0].price == q.ask
    assert cash(broker, "EUR") == 25_000
    assert cash(broker) == pytest.approx(900_000 - 25_000 * q.ask - 2.0)  # 0.2 bp < 2 USD min
    assert rec.fills[0].commission == 2.0
    assert rec.fills[0].commission_currency == "USD"
    v = values(broker)
    eur_rate = broker.market.fx_rate("EUR", "USD")
    assert float(v[("TotalCashValue", "USD")]) == pytest.approx(
        cash(broker) + 25_000 * eur_rate, abs=0.01
    )
    assert ("CashBalance", "EUR") in v


def test_fx_odd_lot_warns_and_fills() -> None:
    broker, _ = make_broker()
    order = broker.place(req(1, contract=EURUSD, qty=10_000, action="SELL"))
    assert "IdealPro minimum" in order.warning_text
    broker.process()
    assert order.status == OrderStatus.FILLED
    assert cash(broker, "EUR") == -10_000


def test_futures_trade_settles_only_pnl() -> None:
    broker, rec = make_broker("futures")
    account = "DU3456789"
    entry = quote(broker, MES).ask
    broker.place(req(1, contract=MES, qty=2, account=account))
    broker.process()
    assert rec.fills[0].commission == 1.24
    assert cash(broker, account=account) == pytest.approx(250_000 - 1.24)
    v = values(broker, account)
    mark = quote(broker, MES).last
    futures_pnl = (mark - 5980.25) * 4 * 5 + (mark - entry) * 2 * 5
    assert float(v[("FuturesPNL", "USD")]) == pytest.approx(futures_pnl, abs=0.01)
    assert float(v[("InitMarginReq", "USD")]) == pytest.approx(6 * 2200, abs=0.01)
    assert float(v[("InitMarginReq-C", "USD")]) == pytest.approx(6 * 2200, abs=0.01)
    assert float(v[("GrossPositionValue", "USD")]) == 0.0
    broker.market.clock.advance(1800)
    exit_bid = quote(broker, MES).bid
    broker.place(req(2, contract=MES, qty=6, action="SELL", account=account))
    broker.process()
    fill = rec.fills[-1]
    avg_cost = (4 * 5980.25 + 2 * entry + 1.24 / 5) / 6  # per unit, commission folded in
    assert fill.realized_pnl == pytest.approx(round((exit_bid - avg_cost) * 6 * 5 - 3.72, 2))
    settled = (exit_bid - 5980.25) * 4 * 5 + (exit_bid - entry) * 2 * 5
    assert cash(broker, account=account) == pytest.approx(250_000 - 1.24 - 3.72 + settled)
    assert not [p for p in broker.positions() if p.account == account]


def test_portfolio_reports_futures_avg_cost_times_multiplier() -> None:
    broker, _ = make_broker("futures")
    (item,) = broker.portfolio("DU3456789")
    assert item.average_cost == pytest.approx(5980.25 * 5)
    assert item.market_value == pytest.approx(4 * 5 * item.market_price)
    assert item.unrealized_pnl == pytest.approx(4 * 5 * (item.market_price - 5980.25), abs=0.01)


class TestLedgerArithmetic:
    """apply_fill with hand-picked prices: every number below is computed by hand."""

    def ledger(self, name: str = "default") -> Ledger:
        broker, _ = make_broker(name)
        return broker.ledger

    def test_stock_round_trip(self) -> None:
        ledger = self.ledger()
        aapl = ledger.market.catalog.find("MSFT")
        assert ledger.apply_fill(ACCOUNT, aapl, "BOT", 100, 10.0, 1.0, "USD") is None
        holding = ledger.books[ACCOUNT].holdings[aapl.con_id]
        assert holding.avg_cost == pytest.approx(10.01)
        realized = ledger.apply_fill(ACCOUNT, aapl, "SLD", 40, 12.0, 1.0, "USD")
        assert realized == pytest.approx((12.0 - 10.01) * 40 - 1.0)  # 78.60
        assert ledger.books[ACCOUNT].cash["USD"] == pytest.approx(900_000 - 1001 + 479)
        assert ledger.books[ACCOUNT].realized["USD"] == pytest.approx(78.6)

    def test_short_then_flip_long(self) -> None:
        ledger = self.ledger()
        msft = ledger.market.catalog.find("MSFT")
        ledger.apply_fill(ACCOUNT, msft, "SLD", 10, 50.0, 1.0, "USD")
        holding = ledger.books[ACCOUNT].holdings[msft.con_id]
        assert holding.quantity == -10
        assert holding.avg_cost == pytest.approx(49.9)
        realized = ledger.apply_fill(ACCOUNT, msft, "BOT", 30, 40.0, 3.0, "USD")
        # 10 covered: (49.9 - 40) x 10 - 1.0 (a third of the commission) = 98.0
        assert realized == pytest.approx(98.0)
        assert holding.quantity == 20
        assert holding.avg_cost == pytest.approx(40.1)

    def test_futures_cash_equals_realized(self) -> None:
        ledger = self.ledger("futures")
        mes = ledger.market.catalog.find("MESH7")
        start = ledger.books["DU3456789"].cash["USD"]
        ledger.apply_fill("DU3456789", mes, "BOT", 2, 6000.0, 1.24, "USD")
        realized = ledger.apply_fill("DU3456789", mes, "SLD", 2, 6010.0, 1.24, "USD")
        assert realized == pytest.approx(97.52)  # (6010 - 6000.124) x 2 x 5 - 1.24
        assert ledger.books["DU3456789"].cash["USD"] - start == pytest.approx(97.52)

    def test_fx_buy_moves_both_legs(self) -> None:
        ledger = self.ledger()
        pair = ledger.market.catalog.find("EUR.USD")
        ledger.apply_fill(ACCOUNT, pair, "BOT", 20_000, 1.1, 2.0, "USD")
        assert ledger.books[ACCOUNT].cash["EUR"] == 20_000
        assert ledger.books[ACCOUNT].cash["USD"] == pytest.approx(900_000 - 22_000 - 2.0)


# --- queries ---------------------------------------------------------------------------
def test_executions_filters() -> None:
    broker, _ = make_broker()
    broker.place(req(1, qty=10))
    broker.place(req(1, qty=10, client_id=2, action="SELL"))
    broker.process()
    broker.market.clock.advance(120)
    broker.place(req(2, contract=EURUSD, qty=20_000))
    broker.process()
    run = broker.executions
    assert len(run(ExecutionFilter())) == 3
    assert [f.order_key for f in run(ExecutionFilter(client_id=2))] == [(2, 1)]
    assert len(run(ExecutionFilter(side="BUY"))) == 2
    assert len(run(ExecutionFilter(side="SLD"))) == 1
    assert len(run(ExecutionFilter(symbol="spy"))) == 2
    assert len(run(ExecutionFilter(sec_type="CASH"))) == 1
    assert len(run(ExecutionFilter(account="DU0000000"))) == 0
    assert len(run(ExecutionFilter(time="20261124 15:01:00"))) == 1
    assert len(run(ExecutionFilter(time="20261124-15:01:00"))) == 1
    assert len(run(ExecutionFilter(time="20261124 10:01:00 US/Eastern"))) == 1


def test_open_orders_by_client() -> None:
    broker, _ = make_broker()
    broker.place(req(1, order_type="LMT", lmt_price=1.0))
    broker.place(req(1, client_id=7, order_type="LMT", lmt_price=1.0))
    assert len(broker.open_orders()) == 2
    assert [o.key for o in broker.open_orders(7)] == [(7, 1)]
    assert broker.order(7, 1) is not None
    assert broker.order(7, 2) is None


def test_account_summary_tags_and_ledger() -> None:
    broker, _ = make_broker("multi_currency")
    account = "DU2345678"
    rows = broker.account_summary(account, ["NetLiquidation", "AccountType", "BuyingPower", "Nope"])
    assert [(r.key, r.currency) for r in rows] == [
        ("NetLiquidation", "EUR"),
        ("AccountType", ""),
        ("BuyingPower", "EUR"),
    ]
    base = broker.account_summary(account, ["$LEDGER"])
    assert {r.currency for r in base} == {"BASE"}
    assert "CashBalance" in {r.key for r in base}
    every = broker.account_summary(account, ["$LEDGER:ALL"])
    assert {r.currency for r in every} == {"BASE", "EUR", "USD", "GBP", "JPY"}
    jpy = broker.account_summary(account, ["$LEDGER:JPY"])
    assert {r.currency for r in jpy} == {"JPY"}
    assert next(r.value for r in jpy if r.key == "CashBalance") == "5000000.00"
    assert broker.account_summary(account, ["$LEDGER:CHF"]) == []


def test_same_inputs_same_fills() -> None:
    def run() -> list:
        broker, rec = make_broker()
        broker.place(req(1, qty=1500))
        broker.place(req(2, contract=EURUSD, qty=30_000))
        for _ in range(3):
            broker.process()
            broker.market.clock.advance(7)
        return [(f.exec_id, f.price, f.shares, f.time, f.perm_id) for f in rec.fills]

    first = run()
    assert first == run()
    assert len(first) == 3
    assert len({f[4] for f in first}) == 2  # one permId per order


# --- persistence ------------------------------------------------------------------------
def test_restart_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "state" / "broker.json"
    clock = Clock(OPEN, frozen=True)
    broker, _ = make_broker(state_path=path, clock=clock)
    broker.place(req(1, qty=1500, order_ref="a"))
    broker.place(req(2, order_type="LMT", lmt_price=1.0, tif="GTC"))
    broker.place(req(3, contract=EURUSD, qty=20_000))
    broker.cancel(1, 2)
    broker.place(req(4, order_type="LMT", lmt_price=2.0, client_id=9))
    broker.process()
    broker.roll_back_ids(9, 1)
    before = snapshot(broker)

    again, _ = make_broker(state_path=path, clock=clock)
    assert snapshot(again) == before
    assert again.next_valid_id(1) == 4
    assert again.next_valid_id(9) == 4
    with pytest.raises(OrderRejected) as err:
        again.place(req(2, order_type="LMT", lmt_price=1.0, client_id=1))
    assert err.value.code == 103
    again.process()  # the broker runs on after a restart: the rest of order 1 fills
    assert again.order(1, 1).status == OrderStatus.FILLED
    assert len(again.executions(ExecutionFilter(client_id=1))) == 3
    assert again.place(req(5)).perm_id > max(o.perm_id for o in again.completed_orders())
    assert sorted(p.name for p in path.parent.iterdir()) == ["broker.json"]  # no temp files
    assert json.loads(path.read_text())["version"] == 1


def snapshot(broker: Broker) -> dict:
    def orders(items: list[Order]) -> list:
        return [(o.key, o.status, o.filled, o.perm_id, o.request, o.completed_time) for o in items]

    return {
        "open": orders(broker.open_orders()),
        "completed": orders(broker.completed_orders()),
        "executions": broker.executions(ExecutionFilter()),
        "positions": broker.positions(),
        "values": broker.account_values(ACCOUNT),
        "ids": {c: broker.next_valid_id(c) for c in (1, 2, 9)},
    }


def test_fills_while_disconnected_are_visible_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "broker.json"
    clock = Clock(SATURDAY, frozen=True)
    broker, _ = make_broker(state_path=path, clock=clock)
    broker.place(req(1, qty=10, tif="GTC"))
    broker.process()
    clock.set(datetime(2026, 11, 30, 15, 0, tzinfo=UTC))  # Monday, nobody connected
    broker.process()
    restarted, _ = make_broker(state_path=path, clock=clock)
    (fill,) = restarted.executions(ExecutionFilter(client_id=1))
    assert fill.time == "20261130 15:00:00 UTC"
    assert restarted.order(1, 1).status == OrderStatus.FILLED


def test_state_survives_a_torn_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "broker.json"
    broker, _ = make_broker(state_path=path)
    broker.place(req(1))
    (tmp_path / ".broker.json.partial").write_text("{not json")
    again, _ = make_broker(state_path=path)
    assert again.order(1, 1) is not None


def test_no_state_path_keeps_state_in_memory() -> None:
    broker, _ = make_broker()
    broker.place(req(1))
    broker.save()  # a no-op without a file
    assert broker.state_path is None
    assert broker.order(1, 1) is not None


def test_day_expiry_uses_the_instrument_session() -> None:
    broker, _ = make_broker("futures")
    order = broker.place(
        req(1, contract=MES, qty=1, order_type="LMT", lmt_price=1.0, account="DU3456789")
    )
    expected = datetime(2026, 11, 24, 15, 0, tzinfo=UTC) + timedelta(hours=22 - 15)
    assert order.good_until == pytest.approx(expected.timestamp())  # 16:00 Chicago = 22:00 UTC
    assert math.isfinite(order.good_until)
