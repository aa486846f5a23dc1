"""Every fault-injection mode, seen through the client library."""

from __future__ import annotations

import asyncio
import time

import pytest

from ibsim.model import ExecutionFilter
from tests.ibsim import iblib
from tests.ibsim.iblib import wait_for

pytestmark = pytest.mark.ib_client

SPY = dict(symbol="SPY", exchange="SMART", currency="USD")


def _errors(ib) -> list[int]:
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
    return codes


def _buy(ib, qty: float = 10, ref: str = "f"):
    return ib.placeOrder(iblib.Stock(**SPY), iblib.MarketOrder("BUY", qty, orderRef=ref))


def _round_trip(ib) -> None:
    """Everything the server sent before now has been handled once this returns."""
    ib.reqCurrentTime()


# --- connections -----------------------------------------------------------------------------


def test_drop_all_disconnects_every_client(sim, ib, connect_client):
    other = connect_client(client_id=2)
    try:
        sim.faults.drop_all()
        wait_for(ib, lambda: not ib.isConnected() and not other.isConnected())
    finally:
        other.disconnect()
    assert connect_client().isConnected()  # the port stays open


@pytest.mark.parametrize(("data_lost", "restored"), [(True, 1101), (False, 1102)])
def test_connectivity_lost_then_restored(sim, ib, data_lost, restored):
    codes = _errors(ib)
    sim.faults.connectivity_lost()
    wait_for(ib, lambda: codes == [1100])
    sim.faults.connectivity_restored(data_lost)
    wait_for(ib, lambda: codes == [1100, restored])
    assert ib.isConnected()


def test_connectivity_blip_restores_by_itself(sim, ib):
    codes = _errors(ib)
    sim.faults.connectivity_blip(False, 0.05)
    wait_for(ib, lambda: codes == [1100, 1102])


def test_data_lost_drops_market_data_subscriptions(sim, ib):
    contract = iblib.Stock(**SPY)
    ib.qualifyContracts(contract)
    ticker = ib.reqMktData(contract)
    wait_for(ib, lambda: ticker.bid > 0)
    sim.faults.connectivity_lost()
    sim.faults.connectivity_restored(True)
    _round_trip(ib)
    assert sim.call(lambda: [s.subs.tickers for s in sim.sim.sessions]) == [{}]


# --- end markers -----------------------------------------------------------------------------


def test_withheld_position_end_fails_the_sync(sim):
    sim.faults.withhold_end("positionEnd")
    ib = iblib.IB()
    started = time.monotonic()
    if iblib.SUPPORTS_RAISE_SYNC_ERRORS:
        with pytest.raises(ConnectionError, match="positions request timed out"):
            iblib.connect(ib, sim.host, sim.port, timeout=0.3)
    else:  # ib_insync logs the timeout and carries on
        iblib.connect(ib, sim.host, sim.port, timeout=0.3)
        ib.disconnect()
    assert time.monotonic() - started >= 0.3


def test_withheld_exec_details_end_aborts_connect(sim, connect_client):
    sim.faults.withhold_end("execDetailsEnd")
    with pytest.raises((ConnectionError, asyncio.TimeoutError)):
        connect_client(timeout=0.3)


@pytest.mark.parametrize(
    ("marker", "request_name"),
    [("openOrderEnd", "reqOpenOrdersAsync"), ("completedOrdersEnd", "reqCompletedOrdersAsync")],
)
def test_withheld_order_end_markers_hang_the_request_until_released(sim, ib, marker, request_name):
    sim.faults.withhold_end(marker)
    args = (False,) if marker == "completedOrdersEnd" else ()
    with pytest.raises(asyncio.TimeoutError):
        ib.run(asyncio.wait_for(getattr(ib, request_name)(*args), 0.2))
    sim.faults.release_ends()
    assert ib.run(asyncio.wait_for(getattr(ib, request_name)(*args), 2)) is not None


def test_delayed_end_marker_slows_the_sync_but_it_succeeds(sim, connect_client):
    sim.faults.delay_end("execDetailsEnd", 0.4)
    started = time.monotonic()
    ib = connect_client(timeout=3)
    assert time.monotonic() - started >= 0.4
    ib.disconnect()


# --- orders ----------------------------------------------------------------------------------


def test_reject_next_order(sim, ib):
    sim.faults.reject_next("simulated margin call")
    errors = []
    ib.errorEvent += lambda req_id, code, text, *rest: errors.append((code, text))
    trade = _buy(ib)
    wait_for(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert errors == [(201, "Order rejected - reason: simulated margin call")]
    after = _buy(ib, ref="next")  # only the next one
    wait_for(ib, lambda: after.orderStatus.status == "Filled")


def test_frozen_fills_hold_orders_until_unfrozen(sim, ib):
    sim.faults.freeze_fills()
    trade = _buy(ib)
    wait_for(ib, lambda: trade.orderStatus.status == "Submitted")
    sim.broker.process()
    _round_trip(ib)
    assert trade.orderStatus.status == "Submitted"
    assert not trade.fills
    sim.faults.unfreeze_fills()
    wait_for(ib, lambda: trade.orderStatus.status == "Filled")


def test_fills_while_disconnected_show_up_in_executions_afterwards(sim, ib, connect_client):
    sim.faults.fill_while_disconnected()
    trade = _buy(ib, ref="away")
    wait_for(ib, lambda: trade.orderStatus.status == "Submitted")
    ib.disconnect()
    deadline = time.monotonic() + 5
    while not sim.broker.executions(ExecutionFilter()) and time.monotonic() < deadline:
        time.sleep(0.01)  # polling the model for a condition, not a fixed wait
    again = connect_client()
    try:
        assert [f.execution.orderRef for f in again.fills()] == ["away"]
        assert [t.orderStatus.status for t in again.reqCompletedOrders(False)] == ["Filled"]
    finally:
        again.disconnect()


# --- gateway life ----------------------------------------------------------------------------


def test_restart_keeps_orders_executions_and_ids(sim, ib, connect_client):
    trade = _buy(ib, ref="before-restart")
    wait_for(ib, lambda: trade.orderStatus.status == "Filled")
    used = trade.order.orderId
    sim.restart()
    wait_for(ib, lambda: not ib.isConnected())
    again = connect_client()
    try:
        assert [f.execution.orderRef for f in again.fills()] == ["before-restart"]
        assert again.client.getReqId() > used
    finally:
        again.disconnect()


def test_restart_with_rolled_back_ids_refuses_reuse_with_103(sim, ib, connect_client):
    trade = _buy(ib)
    wait_for(ib, lambda: trade.orderStatus.status == "Filled")
    used = trade.order.orderId
    sim.faults.restart_with_id_rollback(1, 5)
    wait_for(ib, lambda: not ib.isConnected())
    again = connect_client()
    try:
        codes = _errors(again)
        assert again.client.getReqId() <= used  # nextValidId went backwards
        order = iblib.MarketOrder("BUY", 1)
        order.orderId = used
        reused = again.placeOrder(iblib.Stock(**SPY), order)
        wait_for(again, lambda: reused.orderStatus.status == "Cancelled")
        assert 103 in codes
    finally:
        again.disconnect()


def _refused_with_326(sim, client_id: int) -> None:
    """Connecting as ``client_id`` fails, and the library was told why (error 326)."""
    ib = iblib.IB()
    codes = _errors(ib)
    with pytest.raises((ConnectionError, asyncio.TimeoutError)):
        iblib.connect(ib, sim.host, sim.port, client_id=client_id, timeout=0.5)
    assert 326 in codes


def test_client_id_left_locked_until_restart(sim, connect_client):
    sim.faults.leave_client_id_locked(9)
    first = connect_client(client_id=9)
    first.disconnect()
    _wait_detached(sim, 9)
    _refused_with_326(sim, 9)
    sim.restart()
    assert connect_client(client_id=9).isConnected()


def test_lock_client_id_directly(sim, connect_client):
    sim.faults.lock_client_id(4)
    _refused_with_326(sim, 4)
    assert connect_client(client_id=5).isConnected()


def _wait_detached(sim, client_id: int) -> None:
    deadline = time.monotonic() + 5
    while sim.call(lambda: client_id in sim.sim.clients) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_not_logged_in_handshakes_but_never_gets_ready(sim, connect_client):
    sim.faults.set_not_logged_in(True)
    ib = iblib.IB()
    with pytest.raises(asyncio.TimeoutError):
        iblib.connect(ib, sim.host, sim.port, timeout=0.3)
    assert ib.client.serverVersion() in (0, 176, 178)
    assert not ib.isConnected()
    sim.faults.set_not_logged_in(False)
    assert connect_client().isConnected()


def test_clock_is_controllable_in_process(sim, ib):
    before = ib.reqCurrentTime()
    sim.clock.advance(3600)
    assert (ib.reqCurrentTime() - before).total_seconds() == 3600
