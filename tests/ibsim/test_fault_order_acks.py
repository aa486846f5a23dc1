"""The order-acknowledgement faults, seen through the client library.

``drop-after-place``: the order goes ahead at the broker, but every connection drops before its
client hears of it. ``delay-order-ack``: the acknowledgements come late. In both cases a second
connection finds the order by its orderRef (reqAllOpenOrders, reqCompletedOrders,
reqExecutions): that is what an order journal reconciles with after a lost acknowledgement.
"""

from __future__ import annotations

import time

import pytest

from ibsim.model import OrderStatus
from tests.ibsim import iblib
from tests.ibsim.iblib import wait_for

pytestmark = pytest.mark.ib_client

SPY = dict(symbol="SPY", exchange="SMART", currency="USD")
DELAY = 0.5  # seconds the acknowledgements are held back


def _errors(ib) -> list[int]:
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
    return codes


def _resting_buy(ib, ref: str):
    """A buy limit far below the market: accepted, never fills."""
    return ib.placeOrder(iblib.Stock(**SPY), iblib.LimitOrder("BUY", 10, 1.0, orderRef=ref))


def _market_buy(ib, ref: str):
    return ib.placeOrder(iblib.Stock(**SPY), iblib.MarketOrder("BUY", 10, orderRef=ref))


def _by_ref(trades, ref: str) -> list:
    return [t for t in trades if t.order.orderRef == ref]


def _broker_status(sim, order_id: int) -> OrderStatus | None:
    order = sim.broker.order(1, order_id)
    return None if order is None else order.status


def _wait_broker(sim, order_id: int, status: OrderStatus) -> None:
    deadline = time.monotonic() + 5
    while _broker_status(sim, order_id) != status:
        assert time.monotonic() < deadline, f"order {order_id} never reached {status}"
        time.sleep(0.01)  # polling the model for a condition, not a fixed wait


# --- drop-after-place ------------------------------------------------------------------------


def test_drop_after_place_cuts_every_client_before_the_ack(sim, ib, connect_client):
    other = connect_client(client_id=2)
    codes = _errors(ib)
    sim.faults.drop_after_next_place()
    trade = _resting_buy(ib, "journal-rest")
    wait_for(ib, lambda: not ib.isConnected() and not other.isConnected())
    assert [entry.status for entry in trade.log] == ["PendingSubmit"]  # nothing came back
    assert codes == []
    assert _broker_status(sim, trade.order.orderId) == OrderStatus.SUBMITTED  # yet it is live
    again = connect_client(client_id=3)
    [found] = _by_ref(again.reqAllOpenOrders(), "journal-rest")
    assert (found.order.clientId, found.order.orderId) == (1, trade.order.orderId)
    assert found.orderStatus.status == "Submitted"


def test_drop_after_place_order_fills_and_shows_in_completed_orders_and_executions(
    sim, ib, connect_client
):
    sim.faults.drop_after_next_place()
    trade = _market_buy(ib, "journal-fill")
    wait_for(ib, lambda: not ib.isConnected())
    assert trade.orderStatus.status == "PendingSubmit"
    _wait_broker(sim, trade.order.orderId, OrderStatus.FILLED)
    again = connect_client(client_id=2)
    [done] = _by_ref(again.reqCompletedOrders(False), "journal-fill")
    assert done.orderStatus.status == "Filled"
    fills = [f for f in again.reqExecutions() if f.execution.orderRef == "journal-fill"]
    assert [(f.execution.orderId, f.execution.shares) for f in fills] == [(trade.order.orderId, 10)]
    assert fills[0].execution.permId == done.order.permId


def test_drop_after_place_is_one_shot(sim, ib, connect_client):
    sim.faults.drop_after_next_place()
    _resting_buy(ib, "dropped")
    wait_for(ib, lambda: not ib.isConnected())
    again = connect_client()
    trade = _market_buy(again, "after")
    wait_for(again, lambda: trade.orderStatus.status == "Filled")
    assert again.isConnected()


# --- delay-order-ack -------------------------------------------------------------------------


def test_delayed_ack_arrives_late_but_the_order_is_live_at_once(sim, ib, connect_client):
    sim.faults.delay_order_acks(DELAY)
    started = time.monotonic()
    trade = _market_buy(ib, "journal-late")
    ib.reqCurrentTime()  # other requests are still answered at once
    _wait_broker(sim, trade.order.orderId, OrderStatus.FILLED)  # the broker did not wait
    other = connect_client(client_id=2)
    [done] = _by_ref(other.reqCompletedOrders(False), "journal-late")
    assert [f.execution.orderRef for f in other.reqExecutions()] == ["journal-late"]
    assert time.monotonic() - started < DELAY, "the machine was too slow for this test"
    assert [entry.status for entry in trade.log] == ["PendingSubmit"]
    wait_for(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills)
    assert time.monotonic() - started >= DELAY
    # The acks and the fill that followed them arrive in their original order.
    statuses = [entry.status for entry in trade.log]
    assert statuses[:2] == ["PendingSubmit", "Submitted"]
    assert statuses[-1] == "Filled"
    assert done.order.permId == trade.order.permId


def test_delayed_cancel_ack(sim, ib):
    trade = _resting_buy(ib, "cancel-late")
    wait_for(ib, lambda: trade.orderStatus.status == "Submitted")
    codes = _errors(ib)
    sim.faults.delay_order_acks(DELAY)
    started = time.monotonic()
    ib.cancelOrder(trade.order)
    _wait_broker(sim, trade.order.orderId, OrderStatus.CANCELLED)
    ib.reqCurrentTime()
    assert time.monotonic() - started < DELAY, "the machine was too slow for this test"
    assert trade.orderStatus.status == "PendingCancel"  # set by the library itself
    assert codes == []
    wait_for(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert time.monotonic() - started >= DELAY
    assert codes == [202]


def test_delayed_rejection_error_and_clear(sim, ib):
    codes = _errors(ib)
    sim.faults.delay_order_acks(DELAY)
    sim.faults.reject_next("too late to matter")
    started = time.monotonic()
    trade = _market_buy(ib, "rejected-late")
    wait_for(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert time.monotonic() - started >= DELAY
    assert codes == [201]
    sim.faults.clear()
    started = time.monotonic()
    prompt = _market_buy(ib, "prompt")
    wait_for(ib, lambda: prompt.orderStatus.status == "Filled")
    assert time.monotonic() - started < DELAY


def test_control_names_of_the_ack_faults(sim):
    sim.faults.apply("delay-order-ack", ["0.25"])
    sim.faults.apply("drop-after-place", [])
    assert (sim.faults.order_ack_delay, sim.faults.drop_on_place) == (0.25, True)
    with pytest.raises(ValueError, match="zero seconds or more"):
        sim.faults.apply("delay-order-ack", ["-1"])
    sim.faults.apply("clear", [])
    assert (sim.faults.order_ack_delay, sim.faults.drop_on_place) == (0.0, False)
