"""The order journal against ibsim: whatever fails between a placeOrder and its outcome, each
leg is exactly one order at the broker, counted through a separate client connection (all
clients' open orders, completed orders and executions, by orderRef)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.ibsim import iblib
from worker.journal import order_ref

pytestmark = [pytest.mark.emulators, pytest.mark.ib_client]
BUY_SPY = {"symbol": "SPY", "side": "BUY", "quantity": 10, "order_type": "MKT"}
FAST = {"ORDER_ACK_SECONDS": "1", "ORDER_SEARCH_SECONDS": "1"}


def broker_orders(sim: Any, ref: str) -> set[int]:
    """PermIds of every order at ibsim carrying ``ref``, asked by a client of our own."""
    ib = iblib.IB()
    iblib.connect(ib, sim.host, sim.port, client_id=91)
    try:
        trades = ib.reqAllOpenOrders() + ib.reqCompletedOrders(apiOnly=False)
        fills = ib.reqExecutions(iblib.ExecutionFilter())
    finally:
        ib.disconnect()
    perm_ids = {t.order.permId for t in trades if t.order.orderRef == ref}
    return perm_ids | {f.execution.permId for f in fills if f.execution.orderRef == ref}


def ref_of(stack: Any, key: str) -> str:
    return order_ref(stack.settings.deployment, key, "order")


def deliver_until_done(stack: Any, key: str, tries: int = 20, **params: Any) -> Any:
    """What Pub/Sub does with 503/429: deliver the same message again, until acked."""
    for _ in range(tries):
        reply = stack.push("place_order", {**BUY_SPY, **params}, "m-" + key, idempotency_key=key)
        if reply.status_code == 200:
            return reply
        assert reply.status_code in (429, 503), reply.json
        stack.pipeline.broker.wait_ready(10)
        time.sleep(0.2)
    raise AssertionError(f"not acked after {tries} deliveries: {reply.json}")


def test_place_order_fills_once_and_replays(inproc) -> None:
    stack = inproc()
    reply = deliver_until_done(stack, "po-1")
    assert reply.json["outcome"] == "succeeded"
    [outcome] = stack.outcomes(1)
    [leg] = outcome.data["result"]["legs"]
    assert (leg["status"], leg["filled"], leg["order_ref"]) == ("Filled", 10, ref_of(stack, "po-1"))
    assert leg["commission"] > 0
    assert stack.record("po-1")["legs"]["order"]["state"] == "terminal"
    assert deliver_until_done(stack, "po-1").json["replayed"] is True
    assert len(broker_orders(stack.sim, ref_of(stack, "po-1"))) == 1


def test_connection_dropped_between_place_and_ack(inproc) -> None:
    stack = inproc(**FAST)
    stack.sim.faults.drop_after_next_place()
    first = stack.push("place_order", BUY_SPY, "m-drop", idempotency_key="drop")
    assert first.status_code == 503
    assert stack.record("drop")["legs"]["order"]["state"] in ("planned", "unknown")
    reply = deliver_until_done(stack, "drop")
    assert reply.json["outcome"] == "succeeded"
    [outcome] = stack.outcomes(1)
    [leg] = outcome.data["result"]["legs"]
    assert leg["adopted"] is True
    assert outcome.data["attempt"] >= 2
    assert len(broker_orders(stack.sim, ref_of(stack, "drop"))) == 1


def test_gateway_restart_mid_run_keeps_one_order(inproc) -> None:
    stack = inproc(**FAST)
    stack.sim.faults.freeze_fills()  # the order rests while the run waits for its fill
    done: list[Any] = []
    runner = threading.Thread(
        target=lambda: done.append(
            stack.push("place_order", {**BUY_SPY, "wait_seconds": 10}, "m-rs", idempotency_key="rs")
        )
    )
    runner.start()
    _wait(
        lambda: (stack.record("rs") or {}).get("legs", {}).get("order", {}).get("state") == "sent"
    )
    stack.sim.restart(keep_state=True)  # the nightly restart, orders kept
    runner.join(20)
    assert done[0].status_code == 503
    stack.sim.faults.unfreeze_fills()
    reply = deliver_until_done(stack, "rs", wait_seconds=10)
    [outcome] = stack.outcomes(1)
    assert reply.json["outcome"] == "succeeded"
    assert outcome.data["result"]["legs"][0]["status"] == "Filled"
    assert len(broker_orders(stack.sim, ref_of(stack, "rs"))) == 1


def test_order_ids_are_never_reused_after_an_id_rollback(inproc) -> None:
    stack = inproc(**FAST)
    before = ["id-1", "id-2", "id-3"]
    for key in before:
        deliver_until_done(stack, key)
    # After this restart nextValidId starts again from 1, below every id used so far.
    stack.sim.faults.restart_with_id_rollback(int(stack.settings.ib_client_id), 1000)
    assert stack.pipeline.broker.wait_ready(15)
    reply = deliver_until_done(stack, "id-4")
    assert reply.json["outcome"] == "succeeded", reply.json
    used = [_leg(stack, k)["order_id"] for k in before]
    assert _leg(stack, "id-4")["order_id"] > max(used)
    assert _leg(stack, "id-4")["status"] == "Filled"
    for key in [*before, "id-4"]:
        assert len(broker_orders(stack.sim, ref_of(stack, key))) == 1


def test_a_withheld_end_marker_during_the_search_sends_nothing(inproc) -> None:
    stack = inproc(**FAST)
    faults = stack.sim.faults
    faults.delay_order_acks(2.5)  # attempt 1: sent, never acknowledged in time
    first = stack.push("place_order", BUY_SPY, "m-wh", idempotency_key="wh")
    assert first.json["error"]["code"] == "order_state_unknown"
    faults.withhold_end("openOrderEnd")  # attempt 2: the search cannot complete
    second = stack.push("place_order", BUY_SPY, "m-wh", idempotency_key="wh")
    assert second.status_code == 503
    assert second.json["error"]["code"] == "order_state_unknown"
    faults.release_ends()
    faults.delay_order_acks(0)
    reply = deliver_until_done(stack, "wh")
    assert reply.json["outcome"] == "succeeded"
    assert _leg(stack, "wh")["adopted"] is True
    assert len(broker_orders(stack.sim, ref_of(stack, "wh"))) == 1


def test_the_same_key_twice_at_once_places_one_order(inproc) -> None:
    stack = inproc()
    barrier = threading.Barrier(2)
    replies: list[Any] = []

    def deliver() -> None:
        barrier.wait()
        replies.append(deliver_until_done(stack, "twice"))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.json["replayed"] for r in replies) == [False, True]
    assert len(broker_orders(stack.sim, ref_of(stack, "twice"))) == 1
    assert len(stack.outcomes(1)) == 1


def test_a_rejected_order_fails_with_ibs_reason(inproc) -> None:
    stack = inproc()
    stack.sim.faults.reject_next("Insufficient test margin")
    reply = deliver_until_done(stack, "rej")
    assert reply.json["outcome"] == "failed"
    [outcome] = stack.outcomes(1)
    assert outcome.data["error"]["code"] == "order_rejected"
    assert "Insufficient test margin" in outcome.data["error"]["message"]
    [leg] = outcome.data["error"]["details"]["legs"]
    assert leg["rejected"] is True


def test_dry_run_places_nothing(inproc) -> None:
    stack = inproc()
    reply = stack.push("place_order", BUY_SPY, "m-dry", idempotency_key="dry", dry_run="true")
    assert reply.status_code == 200
    [outcome] = stack.outcomes(1)
    assert outcome.data["result"]["legs"][0]["state"] == "dry_run"
    assert broker_orders(stack.sim, ref_of(stack, "dry")) == set()


def test_order_refs_are_short_stable_and_distinct() -> None:
    ref = order_ref("ib-paper", "key-1", "order")
    assert ref == order_ref("ib-paper", "key-1", "order")
    assert ref.startswith("ibw:")
    assert len(ref) <= 40
    assert ref != order_ref("ib-live", "key-1", "order")
    assert ref != order_ref("ib-paper", "key-2", "order")
    assert len(order_ref("ib-paper", "k", "x" * 64)) <= 40


def _leg(stack: Any, key: str) -> dict[str, Any]:
    return stack.record(key)["legs"]["order"]


def _wait(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


def test_a_hundred_legs_respect_ibs_message_rate(inproc, test_intent) -> None:
    """All legs are sent, then awaited; the client's throttle keeps IB's 50 messages/s (no
    error 100, no disconnect) however fast the journal goes."""
    stack = inproc()
    spy = {"symbol": "SPY", "sec_type": "STK", "exchange": "SMART", "currency": "USD"}

    def hundred(ctx: Any, params: Any) -> dict[str, Any]:
        order = {"action": "BUY", "quantity": 1, "order_type": "MKT", "tif": "DAY"}
        ids = [f"leg-{n:03d}" for n in range(100)]
        for leg_id in ids:
            ctx.orders.place(leg_id, spy, order)
        return {"legs": ctx.orders.settle(ids, 30)}

    test_intent("hundred", hundred, places_orders=True)
    connects = stack.pipeline.broker.connects
    reply = stack.push("hundred", {}, "m-100", idempotency_key="hundred")
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1, timeout=60)
    legs = outcome.data["result"]["legs"]
    assert [leg["status"] for leg in legs] == ["Filled"] * 100
    assert stack.pipeline.broker.connects == connects, "never disconnected for pacing"
    assert len({leg["order_ref"] for leg in legs}) == 100
