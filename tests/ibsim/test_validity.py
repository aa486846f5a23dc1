"""When orders may fill: goodAfterTime, GTD, OPG, DAY with outsideRth; FXCONV conversions."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from ibsim import ibtime
from ibsim.model import ContractQuery, OrderRejected, OrderStatus
from tests.ibsim.test_broker import ACCOUNT, EURUSD, cash, make_broker, quote, req

PRE_OPEN = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # Tuesday 08:00 New York
AFTER_CLOSE = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)  # Tuesday 17:00 New York
FXCONV = dataclasses.replace(EURUSD, exchange="FXCONV")


# --- IB's date-time forms --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "20261124 11:00:00 US/Eastern",
        "20261124 11:00:00 America/New_York",
        "20261124 11:00:00 EST",  # IB's EST means New York time, daylight saving or not
        "20261124-16:00:00",  # UTC
        "20261124 16:00:00",  # no zone: the gateway's (ibsim: UTC)
        "20261124  16:00:00 UTC",
    ],
)
def test_ib_datetime_forms(text):
    assert ibtime.parse(text) == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def test_eastern_alias_follows_daylight_saving():
    assert ibtime.parse("20260701 11:00:00 EST") == datetime(2026, 7, 1, 15, 0, tzinfo=UTC)


# --- goodAfterTime ---------------------------------------------------------------------------


def test_good_after_time_holds_the_order_until_then() -> None:
    broker, _ = make_broker()
    order = broker.place(req(1, good_after_time="20261124 10:30:00 US/Eastern"))
    broker.process()
    assert (order.status, order.filled) == (OrderStatus.PRE_SUBMITTED, 0)
    broker.market.clock.advance(30 * 60)
    broker.process()
    assert order.status == OrderStatus.FILLED


def test_unparseable_good_after_time_is_rejected_with_201() -> None:
    broker, _ = make_broker()
    with pytest.raises(OrderRejected, match="invalid goodAfterTime") as err:
        broker.place(req(1, good_after_time="tomorrow at nine"))
    assert err.value.code == 201


# --- GTD -------------------------------------------------------------------------------------


def test_gtd_order_expires_at_its_good_till_date() -> None:
    broker, _ = make_broker()
    order = broker.place(
        req(1, order_type="LMT", lmt_price=1.0, tif="GTD", good_till_date="20261124 10:15:00 EST")
    )
    broker.market.clock.advance(14 * 60)
    broker.process()
    assert order.status == OrderStatus.SUBMITTED
    broker.market.clock.advance(2 * 60)
    broker.process()
    assert order.status == OrderStatus.CANCELLED


@pytest.mark.parametrize(
    ("date", "reason"),
    [("", "needs a goodTillDate"), ("20261124 09:00:00 US/Eastern", "is past")],
)
def test_gtd_without_a_future_date_is_rejected(date, reason) -> None:
    broker, _ = make_broker()
    with pytest.raises(OrderRejected, match=reason):
        broker.place(req(1, order_type="LMT", lmt_price=1.0, tif="GTD", good_till_date=date))


# --- OPG -------------------------------------------------------------------------------------


def test_opening_order_fills_at_the_opening_price_even_after_the_clock_jumped() -> None:
    broker, rec = make_broker(when=PRE_OPEN)
    order = broker.place(req(1, tif="OPG"))
    broker.process()
    assert order.status == OrderStatus.PRE_SUBMITTED
    broker.market.clock.set(PRE_OPEN + timedelta(hours=4))  # 12:00: the open was at 09:30
    opening = broker.market.quote_at(order.instrument, PRE_OPEN + timedelta(minutes=90))
    broker.process()
    assert order.status == OrderStatus.FILLED
    assert [f.price for f in rec.fills] == [opening.ask]


def test_opening_limit_that_does_not_cross_is_cancelled_at_the_open() -> None:
    broker, rec = make_broker(when=PRE_OPEN)
    order = broker.place(req(1, order_type="LMT", lmt_price=1.0, tif="OPG"))
    broker.market.clock.set(PRE_OPEN + timedelta(minutes=91))
    broker.process()
    assert order.status == OrderStatus.CANCELLED
    assert rec.fills == []


def test_opening_order_placed_during_the_session_waits_for_the_next_open() -> None:
    broker, _ = make_broker()
    order = broker.place(req(1, tif="OPG"))
    broker.process()
    assert order.status == OrderStatus.PRE_SUBMITTED
    assert order.active_from == datetime(2026, 11, 25, 14, 30, tzinfo=UTC).timestamp()


def test_opening_orders_are_for_stocks_only() -> None:
    broker, _ = make_broker()
    with pytest.raises(OrderRejected, match="OPG is only valid for stocks"):
        broker.place(req(1, contract=EURUSD, qty=25_000, tif="OPG"))


# --- DAY and outsideRth ----------------------------------------------------------------------


def test_day_order_outside_rth_lives_until_the_end_of_extended_hours() -> None:
    broker, _ = make_broker(when=AFTER_CLOSE)
    extended = broker.place(req(1, order_type="LMT", lmt_price=1.0, outside_rth=True))
    regular = broker.place(req(2, order_type="LMT", lmt_price=1.0))
    assert extended.good_until == datetime(2026, 11, 25, 1, 0, tzinfo=UTC).timestamp()  # 20:00
    assert regular.good_until == datetime(2026, 11, 25, 21, 0, tzinfo=UTC).timestamp()
    assert extended.status == OrderStatus.SUBMITTED  # extended hours are trading
    assert regular.status == OrderStatus.PRE_SUBMITTED


# --- FXCONV ----------------------------------------------------------------------------------


def test_fxconv_converts_cash_without_an_fx_position_or_margin() -> None:
    broker, _ = make_broker()
    margin_before = broker.ledger.valuation(ACCOUNT).init_margin
    usd_before = cash(broker, "USD")
    q = quote(broker, FXCONV)
    order = broker.place(req(1, contract=FXCONV, qty=10_000))
    broker.process()
    assert order.status == OrderStatus.FILLED
    assert cash(broker, "EUR") == 10_000
    assert cash(broker, "USD") == pytest.approx(usd_before - 10_000 * q.ask - order.commission)
    assert [p.instrument.symbol for p in broker.positions()] == ["AAPL", "SPY", "TLT"]
    assert broker.ledger.valuation(ACCOUNT).init_margin == pytest.approx(margin_before)


def test_idealpro_trade_still_keeps_an_fx_position() -> None:
    broker, _ = make_broker()
    broker.place(req(1, contract=EURUSD, qty=25_000))
    broker.process()
    assert "EUR" in [p.instrument.symbol for p in broker.positions()]


def test_contract_query_keeps_the_conversion_venue() -> None:
    broker, _ = make_broker()
    [inst] = broker.market.catalog.resolve(ContractQuery(symbol="EUR", currency="USD",
                                                         exchange="FXCONV"))  # fmt: skip
    assert inst.exchange == "FXCONV"
