"""Order messages counted on the wire, per negotiated version, with a raw client."""

from __future__ import annotations

import pytest

from ibsim.model import ContractQuery, OrderRequest
from tests.ibsim.rawclient import RawClient

SPY = ContractQuery(symbol="SPY", sec_type="STK", exchange="SMART", currency="USD")
# (server version, openOrder, completedOrder, execDetails) field counts with the message id
COUNTS = [(176, 136, 101, 31), (178, 135, 100, 32)]


def _filled_order(sim, order_id: int = 1) -> None:
    req = OrderRequest(client_id=7, order_id=order_id, contract=SPY, action="BUY",
                       total_quantity=10, order_type="MKT", order_ref="wire")  # fmt: skip
    sim.broker.place(req)
    sim.broker.process()


def _resting_order(sim, order_id: int = 2) -> None:
    req = OrderRequest(client_id=7, order_id=order_id, contract=SPY, action="BUY",
                       total_quantity=10, order_type="LMT", lmt_price=1.0)  # fmt: skip
    sim.broker.place(req)


@pytest.mark.parametrize(("version", "open_count", "completed_count", "exec_count"), COUNTS)
def test_order_frames_have_the_reference_field_counts(
    sim, version, open_count, completed_count, exec_count
):
    _filled_order(sim)
    _resting_order(sim)
    with RawClient(sim.host, sim.port) as c:
        c.connect(client_id=3, offer=f"v157..{version}".encode())
        c.send("16", "1")  # reqAllOpenOrders
        msgs = c.recv_until(lambda f: f[0] == "53")
        [open_order] = [m for m in msgs if m[0] == "5"]
        assert len(open_order) == open_count
        [status] = [m for m in msgs if m[0] == "3"]
        assert len(status) == 12
        c.send("99", "0")  # reqCompletedOrders
        msgs = c.recv_until(lambda f: f[0] == "102")
        [completed] = [m for m in msgs if m[0] == "101"]
        assert len(completed) == completed_count
        assert "wire" in completed
        c.send("7", "3", "42", "0", "", "", "", "", "", "")  # reqExecutions, empty filter
        msgs = c.recv_until(lambda f: f[0] == "55")
        [exec_details] = [m for m in msgs if m[0] == "11"]
        assert len(exec_details) == exec_count
        assert exec_details[1] == "42"
        [commission] = [m for m in msgs if m[0] == "59"]
        assert len(commission) == 8
        assert msgs[-1] == ["55", "1", "42"]


def test_live_fill_events_reach_the_owning_client(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect(client_id=7)
        _filled_order(sim, order_id=5)
        msgs = c.recv_until(lambda f: f[0] == "59")
        assert [m[0] for m in msgs[:2]] == ["5", "3"]
        [exec_details] = [m for m in msgs if m[0] == "11"]
        assert exec_details[1:3] == ["-1", "5"]


def test_open_orders_only_lists_this_clients_orders(sim):
    _resting_order(sim)
    with RawClient(sim.host, sim.port) as c:
        c.connect(client_id=3)
        c.send("5", "1")  # reqOpenOrders
        assert c.recv_until(lambda f: f[0] == "53") == [["53", "1"]]
        c.send("16", "1")  # reqAllOpenOrders
        assert [m[0] for m in c.recv_until(lambda f: f[0] == "53")] == ["5", "3", "53"]


def test_client_zero_auto_binds_and_sees_every_order(sim):
    _resting_order(sim)
    with RawClient(sim.host, sim.port) as c:
        c.connect(client_id=0)
        c.send("15", "1", "1")  # reqAutoOpenOrders(True)
        c.send("5", "1")
        assert [m[0] for m in c.recv_until(lambda f: f[0] == "53")] == ["5", "3", "53"]


def test_auto_open_orders_is_refused_for_other_clients(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect(client_id=4)
        c.send("15", "1", "1")
        assert c.recv()[3] == "321"


def test_global_cancel_cancels_every_working_order(sim):
    _resting_order(sim)
    with RawClient(sim.host, sim.port) as c:
        c.connect(client_id=7)
        c.send("58", "1")
        status = c.recv_until(lambda f: f[0] == "3")[-1]
        assert status[2] == "Cancelled"
    assert sim.broker.open_orders(None) == []
