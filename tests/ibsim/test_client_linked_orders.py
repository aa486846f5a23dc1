"""Brackets, OCA groups and transmit=False through the client library's own helpers."""

from __future__ import annotations

import pytest

from ibsim.model import OrderStatus
from tests.ibsim import iblib
from tests.ibsim.iblib import wait_for

pytestmark = pytest.mark.ib_client


@pytest.fixture
def spy(ib):
    contract = iblib.Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


@pytest.fixture
def touch(ib, spy):
    """The current bid and ask of SPY (the frozen clock keeps them still)."""
    [ticker] = ib.reqTickers(spy)
    return ticker.bid, ticker.ask


def _place_all(ib, contract, orders) -> list:
    return [ib.placeOrder(contract, o) for o in orders]


def _statuses(trades) -> list[str]:
    return [t.orderStatus.status for t in trades]


def test_bracket_children_wait_for_the_parent(ib, spy, touch):
    bid, _ = touch
    # The take-profit is marketable, but its parent rests far below the market.
    bracket = ib.bracketOrder("BUY", 10, 1.0, round(bid * 0.99, 2), 0.5)
    trades = _place_all(ib, spy, bracket)
    wait_for(ib, lambda: _statuses(trades) == ["Submitted", "PreSubmitted", "PreSubmitted"])
    ib.reqCurrentTime()
    assert not any(t.fills for t in trades)
    assert trades[1].orderStatus.parentId == trades[0].order.orderId
    ib.cancelOrder(trades[0].order)
    wait_for(ib, lambda: _statuses(trades) == ["Cancelled"] * 3)


def test_bracket_parent_fill_activates_children_and_one_child_cancels_the_other(ib, spy, touch):
    bid, ask = touch
    bracket = ib.bracketOrder("BUY", 10, round(ask * 1.01, 2), round(bid * 0.99, 2), 1.0)
    trades = _place_all(ib, spy, bracket)
    wait_for(ib, lambda: _statuses(trades) == ["Filled", "Filled", "Cancelled"])
    assert [sum(f.execution.shares for f in t.fills) for t in trades] == [10, 10, 0]


def test_untransmitted_order_stays_pending_until_transmitted(ib, spy, sim):
    order = iblib.MarketOrder("BUY", 5, orderRef="held", transmit=False)
    trade = ib.placeOrder(spy, order)
    ib.reqCurrentTime()
    sim.broker.process()
    assert sim.broker.order(1, order.orderId).status == OrderStatus.API_PENDING
    assert trade.orderStatus.status == "PendingSubmit"  # the gateway reports nothing
    assert not [t for t in ib.reqAllOpenOrders() if t.order.orderRef == "held"]
    order.transmit = True
    ib.placeOrder(spy, order)
    wait_for(ib, lambda: trade.orderStatus.status == "Filled")


@pytest.mark.parametrize("oca_type", [1, 2, 3])
def test_oca_fill_cancels_the_rest_of_the_group(ib, spy, oca_type):
    group = ib.oneCancelsAll(
        [iblib.LimitOrder("BUY", 10, 1.0), iblib.MarketOrder("BUY", 10)], "grp", oca_type
    )
    resting, market = _place_all(ib, spy, group)
    wait_for(ib, lambda: market.orderStatus.status == "Filled")
    wait_for(ib, lambda: resting.orderStatus.status == "Cancelled")
    assert not resting.fills
