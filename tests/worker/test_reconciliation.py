"""trade_reconciliation in-process: executions booked once by execId, never for cancelled or
rejected orders, differences with the broker reported, rows fit the BigQuery schemas."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.bigquery_rows import check_row
from tests.worker.test_allocation import allocate, configure, holdings
from worker import outcomes
from worker.recording import blotter_rows, execution_rows

pytestmark = pytest.mark.emulators
SCHEMAS = Path(__file__).resolve().parents[2] / "worker" / "schemas" / "bigquery"
SPY_ONLY = {"fixed_weights": {"weights": {"SPY": 0.5}}}


def reconcile(stack: Any, key: str) -> dict[str, Any]:
    reply = stack.push("trade-reconciliation", {}, "m-" + key, idempotency_key=key)
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1)
    assert outcome.kind == "succeeded", outcome.data
    return outcome.data


def test_fills_after_the_run_are_booked_once(inproc) -> None:
    stack = inproc()
    configure(stack, {"fixed_weights": 0.5}, SPY_ONLY)
    stack.sim.faults.freeze_fills()
    reply = stack.push("allocation", {"wait_seconds": 0}, "m-a", idempotency_key="a")
    assert reply.status_code == 200
    [outcome] = stack.outcomes(1)
    [leg] = outcome.data["result"]["legs"]
    assert holdings(stack, "fixed_weights") == {}, "nothing filled yet"
    stack.sim.faults.unfreeze_fills()
    _wait_filled(stack, leg["order_ref"])
    first = reconcile(stack, "r-1")["result"]
    assert first["booked"] >= 1
    con = str(leg["contract"]["con_id"])
    assert holdings(stack, "fixed_weights") == {con: leg["order"]["quantity"]}
    again = reconcile(stack, "r-2")["result"]
    assert again["booked"] == 0, "an execution seen twice is booked once"
    assert holdings(stack, "fixed_weights") == {con: leg["order"]["quantity"]}
    [row] = [b for b in again["blotter"] if b["strategy"] == "fixed_weights"]
    assert row["position"] == leg["order"]["quantity"]
    assert row["commission"] > 0, "the commission reports reach the blotter"
    ours = [e for e in again["executions"] if e["order_ref"] == leg["order_ref"]]
    assert ours
    assert all(e["commission"] > 0 for e in ours)
    spy = next(d for d in again["differences"] if d["symbol"] == "SPY")
    assert spy["unattributed"] == 100, "the scenario's own 100 SPY belong to no strategy"


def test_a_rejected_order_is_never_booked(inproc) -> None:
    stack = inproc()
    configure(stack, {"fixed_weights": 0.5}, SPY_ONLY)
    stack.sim.faults.reject_next("no margin today")
    outcome = allocate(stack, "rej")
    assert (outcome.kind, outcome.data["error"]["code"]) == ("failed", "incomplete")
    [leg] = outcome.data["error"]["details"]["result"]["legs"]
    assert leg["rejected"] is True
    result = reconcile(stack, "r-rej")["result"]
    assert result["booked"] == 0
    assert holdings(stack, "fixed_weights") == {}


def test_rows_fit_the_bigquery_schemas() -> None:
    execution = {
        "exec_id": "0001.01", "time": "2026-11-18T15:30:01+00:00", "con_id": 7, "symbol": "SPY",
        "sec_type": "STK", "currency": "USD", "side": "BOT", "shares": 10.0, "price": 600.0,
        "order_id": 3, "perm_id": 9, "order_ref": "ibw:abc:alloc-7", "commission": 1.0,
        "commission_currency": "USD", "realized_pnl": None, "strategies": {"fixed_weights": 10},
    }  # fmt: skip
    blot = {"strategy": "fixed_weights", "con_id": 7, "symbol": "SPY", "position": 10.0,
            "realized_pnl": 0.0, "commission": 1.0}  # fmt: skip
    data = {"account": "DU1", "trading_mode": "paper",
            "result": {"executions": [execution], "blotter": [blot]}}  # fmt: skip
    stored = outcomes.build(
        event_id="e", outcome="succeeded", source="/s", subject="trade_reconciliation",
        time=datetime(2026, 11, 18, 16, tzinfo=UTC), data=data,
    )  # fmt: skip
    for table, build in (("executions", execution_rows), ("blotter", blotter_rows)):
        schema = json.loads((SCHEMAS / f"{table}.json").read_text())
        [row] = build(stored, data)
        _, errors = check_row(schema, row)
        assert errors == [], table


def _wait_filled(stack: Any, order_ref: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        filled = [
            o for o in stack.sim.broker.completed_orders() if o.request.order_ref == order_ref
        ]
        if filled:
            return
        assert time.monotonic() < deadline, "the order never filled"
        time.sleep(0.05)
