"""The ``freeze_fills_after`` fault: orders left partly filled, deterministically."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import ibsim
from ibsim import control, scenario
from ibsim.market import Clock
from tests.ibsim import iblib
from tests.ibsim.iblib import wait_for

pytestmark = pytest.mark.ib_client

ACCOUNT = "DU1234567"
CHUNK = 10  # partial_fill_size for stocks: one 10-share chunk per order per matching pass


@pytest.fixture
def sim(tmp_path, clock: Clock) -> Iterator[ibsim.ThreadedSimulator]:
    """A one-account scenario filling stocks in 10-share chunks (overrides conftest's)."""
    sc = scenario.from_dict(
        {
            "accounts": [{"id": ACCOUNT, "cash": {"USD": 1_000_000}}],
            "options": {"partial_fill_size": {"STK": CHUNK}},
        },
        name="chunked",
    )
    with ibsim.run_in_thread(sc, state_dir=tmp_path, clock=clock, process_interval=0.02) as s:
        yield s


def _buy(ib, qty: float, symbol: str = "SPY"):
    contract = iblib.Stock(symbol, "SMART", "USD")
    return ib.placeOrder(contract, iblib.MarketOrder("BUY", qty, account=ACCOUNT))


def _settle(sim: ibsim.ThreadedSimulator, ib) -> None:
    """Run more matching passes than any frozen order could use, then drain the socket."""
    for _ in range(5):
        sim.broker.process()
    ib.reqCurrentTime()  # everything sent before this answer has been handled


def test_two_chunks_then_frozen_until_unfrozen(sim, ib) -> None:
    sim.faults.freeze_fills_after(2)
    trade = _buy(ib, 50)
    wait_for(ib, lambda: len(trade.fills) >= 2)
    _settle(sim, ib)
    assert trade.orderStatus.status == "Submitted"
    assert trade.orderStatus.filled == 2 * CHUNK
    assert trade.orderStatus.remaining == 50 - 2 * CHUNK
    assert [f.execution.shares for f in trade.fills] == [CHUNK, CHUNK]
    assert len(ib.reqExecutions()) == 2

    sim.faults.unfreeze_fills()
    wait_for(ib, lambda: trade.orderStatus.status == "Filled")
    assert trade.orderStatus.filled == 50
    assert sum(f.execution.shares for f in trade.fills) == 50


def test_budget_is_shared_across_orders(sim, ib) -> None:
    sim.faults.freeze_fills()  # both orders rest, so one matching pass sees them together
    first, second = _buy(ib, 30), _buy(ib, 30, "QQQ")
    wait_for(ib, lambda: second.orderStatus.status == "Submitted")
    sim.faults.freeze_fills_after(3)
    wait_for(ib, lambda: len(first.fills) + len(second.fills) >= 3)
    _settle(sim, ib)
    assert first.orderStatus.filled + second.orderStatus.filled == 3 * CHUNK
    assert {first.orderStatus.status, second.orderStatus.status} == {"Submitted"}


def test_clear_releases_and_drops_the_budget(sim, ib) -> None:
    sim.faults.freeze_fills_after(0)  # zero: frozen at once
    trade = _buy(ib, 20)
    wait_for(ib, lambda: trade.orderStatus.status == "Submitted")
    _settle(sim, ib)
    assert not trade.fills
    sim.faults.clear()
    wait_for(ib, lambda: trade.orderStatus.status == "Filled")
    later = _buy(ib, 30)  # no budget left over: three chunks fill
    wait_for(ib, lambda: later.orderStatus.status == "Filled")


def test_control_endpoint_name_and_bad_count(sim) -> None:
    reply = sim.call(control.execute, sim.sim, b'{"mode": "freeze-fills-after", "args": ["4"]}')
    assert reply == {"ok": True, "result": None}
    assert sim.broker.fill_budget == 4
    assert not sim.broker.fills_frozen
    bad = sim.call(control.execute, sim.sim, b'{"mode": "freeze-fills-after", "args": ["-1"]}')
    assert bad["ok"] is False
    assert "zero or more" in bad["error"]
