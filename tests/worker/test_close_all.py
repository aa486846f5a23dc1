"""close_all and cancel_orders against ibsim: cancels awaited before anything is flattened,
only our orders touched, the kill switch honoured for new exposure only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ibsim import iblib
from worker.intents.close_all import _to_close

pytestmark = [pytest.mark.emulators, pytest.mark.ib_client]
RESTING_BUY = {
    "symbol": "SPY",
    "side": "BUY",
    "quantity": 5,
    "order_type": "LMT",
    "limit_price": 100.0,  # far below the market: it rests
    "wait_seconds": 0,
}


def broker(sim: Any) -> tuple[dict[str, float], list[Any]]:
    """Positions by symbol and open orders, through a client of our own."""
    ib = iblib.IB()
    iblib.connect(ib, sim.host, sim.port, client_id=92)
    try:
        positions = {p.contract.symbol: p.position for p in ib.reqPositions()}
        orders = [t for t in ib.reqAllOpenOrders() if t.orderStatus.status != "Cancelled"]
    finally:
        ib.disconnect()
    return positions, orders


def manual_order(sim: Any) -> None:
    """An order someone placed by hand (no orderRef of ours): never ours to cancel."""
    ib = iblib.IB()
    iblib.connect(ib, sim.host, sim.port, client_id=93)
    try:
        ib.placeOrder(iblib.Stock("AAPL", "SMART", "USD"), iblib.LimitOrder("BUY", 1, 50.0))
        iblib.wait_for(ib, lambda: ib.openTrades() and ib.openTrades()[0].order.permId)
    finally:
        ib.disconnect()


def test_close_all_cancels_ours_then_flattens_the_named_positions(inproc) -> None:
    stack = inproc()
    assert stack.push("place_order", RESTING_BUY, "m-r", idempotency_key="rest").status_code == 200
    manual_order(stack.sim)
    reply = stack.push("close-all", {"symbols": ["SPY"]}, "m-c", idempotency_key="close-1")
    assert reply.status_code == 200, reply.json
    outcomes = {o.subject: o for o in stack.outcomes(2)}
    result = outcomes["close_all"].data["result"]
    [cancelled] = result["cancelled"]
    assert cancelled["status"] == "Cancelled"
    [leg] = result["legs"]
    assert (leg["status"], leg["filled"], leg["order"]["action"]) == ("Filled", 100, "SELL")
    positions, orders = broker(stack.sim)
    assert "SPY" not in positions
    assert positions["AAPL"] == 50, "positions not named are untouched"
    assert [t.order.orderRef for t in orders] == [""], "the manual order is still working"


def test_a_close_ib_rejects_is_never_reported_as_done(inproc) -> None:
    stack = inproc()
    stack.sim.faults.reject_next("no short sale locate today")
    reply = stack.push("close_all", {"symbols": ["TLT", "AAPL"]}, "m-j", idempotency_key="rj")
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1)
    assert (outcome.kind, outcome.data["error"]["code"]) == ("failed", "incomplete")
    legs = outcome.data["error"]["details"]["result"]["legs"]
    assert sorted(leg.get("rejected", False) for leg in legs) == [False, True]
    positions, _ = broker(stack.sim)
    assert len(positions.keys() & {"TLT", "AAPL"}) == 1, "one closed, the rejected one still held"


def test_close_all_needs_a_selection(inproc) -> None:
    stack = inproc()
    assert stack.push("close_all", {}, "m-n", idempotency_key="none").status_code == 200
    [outcome] = stack.outcomes(1)
    assert outcome.data["error"]["code"] == "invalid_params"


def test_the_kill_switch_blocks_new_orders_not_their_unwinding(inproc) -> None:
    stack = inproc()
    assert stack.push("place_order", RESTING_BUY, "m-r", idempotency_key="r2").status_code == 200
    stack.outcomes(1)
    stack.firestore.collection("config").document("common").set({"tradingEnabled": False})
    refused = stack.push("place_order", RESTING_BUY, "m-x", idempotency_key="blocked")
    assert refused.status_code == 200
    [outcome] = stack.outcomes(1)
    assert outcome.data["error"]["code"] == "risk_refused"
    cancel = stack.push("cancel_orders", {"all_ours": True}, "m-k", idempotency_key="cancel")
    assert cancel.status_code == 200
    [outcome] = stack.outcomes(1)
    assert outcome.kind == "succeeded"
    assert outcome.data["result"]["count"] == 1
    _, orders = broker(stack.sim)
    assert orders == []


def test_dry_run_close_all_lists_the_plan_and_sends_nothing(inproc) -> None:
    stack = inproc()
    body = {"all_positions": True}
    reply = stack.push("close_all", body, "m-d", idempotency_key="dry", dry_run="true")
    assert reply.status_code == 200
    [outcome] = stack.outcomes(1)
    plan = outcome.data["result"]["plan"]
    assert {leg["order"]["action"] for leg in plan} == {"SELL"}
    assert len(plan) == 3
    positions, _ = broker(stack.sim)
    assert positions == {"SPY": 100, "AAPL": 50, "TLT": 200}


def test_close_all_by_strategy_unwinds_only_what_the_strategy_holds(inproc) -> None:
    stack = inproc()
    doc = {
        "exposure": {"overall": 0.5, "strategies": {"fixed_weights": 0.2}},
        "strategies": {"fixed_weights": {"weights": {"SPY": 0.5}}},
    }
    stack.firestore.collection("config").document("common").set(doc)
    reply = stack.push("allocation", {"wait_seconds": 10}, "m-al", idempotency_key="al")
    assert reply.status_code == 200
    [bought] = stack.outcomes(1)[0].data["result"]["legs"]
    reply = stack.push("close_all", {"strategies": ["fixed_weights"]}, "m-cs", idempotency_key="cs")
    assert reply.status_code == 200
    [outcome] = stack.outcomes(1)
    [leg] = outcome.data["result"]["legs"]
    assert (leg["order"]["action"], leg["filled"]) == ("SELL", bought["filled"])
    positions, _ = broker(stack.sim)
    assert positions["SPY"] == 100, "the 100 SPY no strategy owns stay"
    ref = stack.firestore.collection("positions").document("paper")
    held = ref.collection("holdings").document("fixed_weights").get().to_dict()
    assert held == {str(leg["contract"]["con_id"]): 0}


def test_whole_and_strategy_closes_split_as_they_should() -> None:
    quantity, shares = _to_close({"con_id": 1, "position": 150}, {"a": {1: 50}}, [], True)
    assert quantity == -150
    assert shares == {"a": -50, "_unattributed": -100}
    both = {"a": {1: 30}, "b": {1: 30}}
    quantity, shares = _to_close({"con_id": 1, "position": 40}, both, ["a", "b"], False)
    assert quantity == -40, "never more than the broker holds"
    assert shares == {"a": -20, "b": -20}
