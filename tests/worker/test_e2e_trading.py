"""The trading intents end to end: Pub/Sub emulator push -> gunicorn -> Firestore emulator ->
ibsim (real TWS protocol) -> outcome CloudEvents on the results topic. Nothing is mocked.

The in-process files (test_allocation.py, test_close_all.py, test_cash_balancer.py,
test_place_order.py) cover the same behaviours through Flask's test client; these prove them on
the deployed path: a real push subscription delivering to the worker under gunicorn, which
learns its account from the gateway (or the `account` attribute) and reads the trading config
from Firestore. Each worker start costs seconds, so one worker serves several checks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.cloud import firestore

from ibsim.market import Clock
from ibsim.scenario import SCENARIO_DIR as SCENARIOS
from tests.ibsim import iblib
from tests.worker.test_journal import broker_orders
from worker.devstack.pubsub_setup import LocalPubSub, Outcome, PushPolicy
from worker.journal import order_ref

pytestmark = pytest.mark.emulators

# Wednesday 18 Nov 2026, 10:30 in New York: US stocks and FX trade.
MARKET_OPEN = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)
# Thanksgiving, 10:30 in New York: a weekday on which the US stock market is closed.
THANKSGIVING = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
DEPLOYMENT = "ib-paper"
OUTCOME_TIMEOUT_S = 60.0
FIXED_WEIGHTS = {
    "exposure": {"overall": 0.5, "strategies": {"fixed_weights": 0.5}},
    "strategies": {"fixed_weights": {"weights": {"SPY": 0.3, "TLT": 0.2}}},
}
BUY_SPY = {"symbol": "SPY", "side": "BUY", "quantity": 10, "order_type": "MKT"}


@dataclass
class Trading:
    """One worker under gunicorn behind a push subscription, the ibsim it trades on, and the
    clients a test drives them with."""

    sim: Any
    pubsub: LocalPubSub
    firestore: firestore.Client
    worker_log: Path

    @property
    def config(self) -> firestore.DocumentReference:
        """The trading config every intent reads (``config/common``)."""
        return self.firestore.collection("config").document("common")

    def publish(self, intent: str, params: dict[str, Any], key: str, **attributes: str) -> None:
        """Publish one intent message with idempotency_key=key."""
        self.pubsub.publish_intent(intent, params, {"idempotency_key": key, **attributes})

    def run(self, intent: str, params: dict[str, Any], key: str, **attributes: str) -> Outcome:
        """Publish one intent and return its outcome event (the only one that may arrive)."""
        self.publish(intent, params, key, **attributes)
        outcomes = self.pubsub.pull_outcomes(timeout=OUTCOME_TIMEOUT_S, expected=1)
        assert outcomes, f"no outcome for {intent} {key} within {OUTCOME_TIMEOUT_S:.0f}s"
        [outcome] = outcomes
        assert outcome.data["idempotency_key"] == key, outcome.data
        return outcome

    def holdings(self, strategy: str) -> dict[str, float]:
        """The strategy's book in Firestore ({conId: quantity})."""
        books = self.firestore.collection("positions").document("paper")
        return books.collection("holdings").document(strategy).get().to_dict() or {}

    def wait_logged(self, message: str, key: str, timeout: float = 30.0) -> None:
        """Wait until the worker logged `message` (a prefix) for idempotency key `key`."""
        deadline = time.monotonic() + timeout
        while not any(_is(line, message, key) for line in _lines(self.worker_log)):
            assert time.monotonic() < deadline, f"the worker never logged {message!r} for {key}"
            time.sleep(0.1)


def _lines(path: Path) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def _is(line: str, message: str, key: str) -> bool:
    try:
        entry = json.loads(line)
    except ValueError:
        return False  # gunicorn's own lines are not JSON
    labels = entry.get("logging.googleapis.com/labels") or {}
    return entry.get("message", "").startswith(message) and labels.get("key") == key


@pytest.fixture
def trading(
    worker_server: Callable[..., Any],
    pubsub: LocalPubSub,
    ibsim_factory: Callable[..., Any],
    clean_firestore: Any,
    emulator_env: Any,
    tmp_path: Path,
) -> Iterator[Callable[..., Trading]]:
    """Factory: ``trading(scenario=..., at=...)`` -> Trading, ibsim's clock frozen at ``at``.

    The worker re-reads the trading config on every intent (CONFIG_CACHE_SECONDS=0), so a
    test can turn the kill switch on between two intents.
    """
    client = emulator_env.firestore_client()

    def start(scenario: str = "default", at: datetime = MARKET_OPEN) -> Trading:
        sim = ibsim_factory(
            scenario=scenario,
            state_dir=tmp_path / "ibsim",
            clock=Clock(at, frozen=True),
            process_interval=0.02,
        )
        worker = worker_server(
            IB_HOST=str(sim.host),
            IB_PORT=str(sim.port),
            IB_CONNECT_TIMEOUT="3",
            CONFIG_CACHE_SECONDS="0",
            wait_ready=True,
        )
        pubsub.setup(worker.url + "/", PushPolicy(min_backoff_s=0.5, max_backoff_s=2.0))
        return Trading(sim, pubsub, client, worker.process.log_path)

    yield start
    client.close()


def legs_by_symbol(outcome: Outcome) -> dict[str, dict[str, Any]]:
    """The result's legs keyed by their contract's symbol."""
    return {leg["contract"]["symbol"]: leg for leg in outcome.data["result"]["legs"]}


def test_allocation_trades_once_and_the_kill_switch_spares_close_all(
    trading: Callable[..., Trading],
) -> None:
    stack = trading()
    stack.config.set(FIXED_WEIGHTS)
    params = {"strategies": ["fixed_weights"], "wait_seconds": 10}
    first = stack.run("allocation", params, "alloc-1")
    assert first.kind == "succeeded", first.data
    legs = legs_by_symbol(first)
    assert set(legs) == {"SPY", "TLT"}
    assert {leg["status"] for leg in legs.values()} == {"Filled"}
    assert all(leg["strategies"] == {"fixed_weights": leg["filled"]} for leg in legs.values())

    # Pub/Sub delivers the same message again (same key): replayed, no second outcome or order.
    stack.publish("allocation", params, "alloc-1")
    stack.wait_logged("replayed the stored succeeded outcome", "alloc-1")
    assert stack.pubsub.pull_outcomes(timeout=1, expected=1) == []
    for leg in legs.values():
        assert len(broker_orders(stack.sim, leg["order_ref"])) == 1, leg["order_ref"]

    stack.config.set({"tradingEnabled": False}, merge=True)
    refused = stack.run("allocation", params, "alloc-2")
    assert (refused.kind, refused.data["error"]["code"]) == ("rejected", "risk_refused")
    assert "tradingEnabled" in refused.data["error"]["message"]
    never_sent = order_ref(DEPLOYMENT, "alloc-2", legs["SPY"]["leg_id"])
    assert broker_orders(stack.sim, never_sent) == set()

    closed = stack.run("close_all", {"symbols": ["TLT"]}, "close-1")
    assert closed.kind == "succeeded", closed.data
    [leg] = closed.data["result"]["legs"]
    assert (leg["contract"]["symbol"], leg["status"]) == ("TLT", "Filled")
    # The scenario's own 200 TLT and what the allocation bought: the position is flat.
    assert (leg["order"]["action"], leg["filled"]) == ("SELL", 200 + legs["TLT"]["filled"])


def test_cash_balancer_brings_foreign_cash_home_to_the_eur_base(
    trading: Callable[..., Trading],
) -> None:
    stack = trading(scenario="multi_currency")  # one EUR-based account: the worker learns it
    stack.config.set({"cashBalanceThresholdInBaseCurrency": 10_000})
    outcome = stack.run("cash_balancer", {}, "cb-1")
    assert outcome.kind == "succeeded", outcome.data
    assert outcome.attributes["account"] == "DU2345678"
    legs = {leg["leg_id"]: leg for leg in outcome.data["result"]["legs"]}
    assert set(legs) == {"fx-USD", "fx-GBP", "fx-JPY"}
    assert {leg["status"] for leg in legs.values()} == {"Filled"}
    assert {leg["contract"]["exchange"] for leg in legs.values()} == {"FXCONV"}

    summary = stack.run("summary", {"sections": ["values"]}, "cb-after")
    cash = {c: float(v) for c, v in summary.data["result"]["values"]["CashBalance"].items()}
    per_eur = {"USD": 1.08, "GBP": 0.85, "JPY": 162.0}  # ibsim's seeds, roughly
    for currency, rate in per_eur.items():
        assert abs(cash.get(currency, 0.0)) / rate < 10_000, (currency, cash)
    assert cash["EUR"] > 400_000, "the conversions bought EUR"


def test_a_us_market_holiday_refuses_place_order_by_market_hours(
    trading: Callable[..., Trading],
) -> None:
    stack = trading(at=THANKSGIVING)
    outcome = stack.run("place_order", BUY_SPY, "holiday-1")
    assert (outcome.kind, outcome.data["error"]["code"]) == ("rejected", "risk_refused")
    checks = outcome.data["error"]["details"]["checks"]
    assert [c["ok"] for c in checks if c["rule"] == "market_hours"] == [False], checks
    assert broker_orders(stack.sim, order_ref(DEPLOYMENT, "holiday-1", "order")) == set()


def allocation_config(shares: dict[str, float], strategies: dict[str, Any]) -> dict[str, Any]:
    """A trading config for allocation: half the net liquidation, split by ``shares``."""
    return {"exposure": {"overall": 0.5, "strategies": shares}, "strategies": strategies}


def test_strategies_share_fail_and_meet_rejections_through_push(
    trading: Callable[..., Trading],
) -> None:
    """Two strategies sharing SPY get one order; a failing strategy freezes only its own
    instruments; a leg IB rejects is never booked; neither of the last two is a success."""
    stack = trading()
    shares = {"fixed_weights": 0.5, "dummy": 0.5}
    both_on_spy = {"fixed_weights": {"weights": {"SPY": 0.5}}, "dummy": {"weights": {"SPY": -0.2}}}
    stack.config.set(allocation_config(shares, both_on_spy))
    shared = stack.run("allocation", {"wait_seconds": 10}, "share-1")
    assert shared.kind == "succeeded", shared.data
    [leg] = shared.data["result"]["legs"]
    [cross] = shared.data["result"]["crosses"]
    spy = str(leg["contract"]["con_id"])
    fixed, dummy = stack.holdings("fixed_weights")[spy], stack.holdings("dummy")[spy]
    assert (leg["order"]["action"], leg["status"]) == ("BUY", "Filled")
    assert fixed > 0 > dummy
    assert fixed + dummy == leg["filled"], "one net order, the rest crossed inside"
    assert cross["cross"]["dummy"] == dummy

    # dummy now fails: its SPY stays as it is and AAPL is never ordered; fixed_weights trades.
    failing = {**both_on_spy, "dummy": {"weights": {"SPY": -0.2, "AAPL": 0.1}, "fail": True}}
    failing["fixed_weights"] = {"weights": {"SPY": 0.5, "TLT": 0.2}}
    stack.config.set(allocation_config(shares, failing))
    frozen = stack.run("allocation", {"wait_seconds": 10}, "fail-1")
    assert (frozen.kind, frozen.data["error"]["code"]) == ("failed", "incomplete"), frozen.data
    result = frozen.data["error"]["details"]["result"]
    assert [f["strategy"] for f in result["failed"]] == ["dummy"]
    assert [leg["contract"]["symbol"] for leg in result["legs"]] == ["TLT"]
    assert stack.holdings("dummy") == {spy: dummy}
    assert broker_orders(stack.sim, order_ref(DEPLOYMENT, "fail-1", "alloc-265598")) == set()

    # IB rejects the next order (QQQ): the run says so, and nothing of it is ever booked.
    rejecting = {**failing, "dummy": {"weights": {"SPY": -0.2}}}
    rejecting["fixed_weights"] = {"weights": {"SPY": 0.5, "TLT": 0.2, "QQQ": 0.1}}
    stack.config.set(allocation_config(shares, rejecting))
    stack.sim.faults.reject_next("no margin for QQQ today")
    refused = stack.run("allocation", {"wait_seconds": 10}, "rej-1")
    assert (refused.kind, refused.data["error"]["code"]) == ("failed", "incomplete"), refused.data
    [qqq] = refused.data["error"]["details"]["result"]["legs"]
    assert (qqq["contract"]["symbol"], qqq["rejected"]) == ("QQQ", True)
    assert "no margin for QQQ" in qqq["reason"]
    booked = stack.run("trade_reconciliation", {}, "recon-1")
    assert booked.kind == "succeeded", booked.data
    assert str(qqq["contract"]["con_id"]) not in stack.holdings("fixed_weights")


def futures_in_chunks(tmp_path: Path) -> str:
    """ibsim's futures scenario, its MES orders filling two contracts at a time."""
    scenario = yaml.safe_load((SCENARIOS / "futures.yaml").read_text())
    scenario["options"]["partial_fill_size"]["FUT"] = 2
    path = tmp_path / "futures_in_chunks.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return str(path)


def test_futures_sized_by_multiplier_fill_partly_and_are_booked_once(
    trading: Callable[..., Trading], tmp_path: Path
) -> None:
    """MES (multiplier 5) sized from net liquidation; the order fills partly within the run,
    the working rest is not ordered again, and each execution is booked once as it comes."""
    stack = trading(scenario=futures_in_chunks(tmp_path))
    mes = {"symbol": "MES", "sec_type": "FUT", "exchange": "CME", "last_trade_date": "202612"}
    weights = {"fixed_weights": {"weights": {"MES": 1.0}, "instruments": {"MES": mes}}}
    config = {"exposure": {"overall": 1.0, "strategies": {"fixed_weights": 1.0}}}
    stack.config.set({**config, "strategies": weights})
    values = stack.run("summary", {"sections": ["values"]}, "fut-values").data["result"]
    net_liq = float(values["values"]["NetLiquidation"]["USD"])
    plan = stack.run("allocation", {}, "fut-dry", dry_run="true").data["result"]
    [(con, target)] = plan["targets"]["fixed_weights"].items()
    assert target == int(net_liq / (plan["prices"][con]["price"] * 5)) > 4, plan

    stack.sim.faults.freeze_fills_after(2)  # two chunks of two contracts, then nothing fills
    first = stack.run("allocation", {"wait_seconds": 3}, "fut-1")
    assert first.kind == "succeeded", first.data
    [leg] = first.data["result"]["legs"]
    assert (leg["order"]["quantity"], leg["filled"], leg["status"]) == (target, 4, "Submitted")
    assert stack.holdings("fixed_weights") == {con: 4}, "the partial fills are booked"
    again = stack.run("allocation", {"wait_seconds": 0}, "fut-2")
    assert again.data["result"]["legs"] == [], "the working rest already covers the target"

    stack.sim.faults.unfreeze_fills()
    _await_position(stack.sim, int(con), 4 + target)  # the scenario's own 4 MES plus ours
    booked = stack.run("trade_reconciliation", {}, "fut-recon-1").data["result"]
    assert booked["booked"] == (target - 4 + 1) // 2, "one booking per remaining chunk"
    assert stack.holdings("fixed_weights") == {con: target}
    rebooked = stack.run("trade_reconciliation", {}, "fut-recon-2").data["result"]
    assert rebooked["booked"] == 0, "an execution seen twice is booked once"
    assert len(broker_orders(stack.sim, leg["order_ref"])) == 1


def _await_position(sim: Any, con_id: int, quantity: float, timeout: float = 20.0) -> None:
    """Wait until ibsim's account holds ``quantity`` of ``con_id`` (asked by our own client)."""
    deadline = time.monotonic() + timeout
    while True:
        ib = iblib.IB()
        iblib.connect(ib, sim.host, sim.port, client_id=92)
        try:
            held = {p.contract.conId: p.position for p in ib.reqPositions()}
        finally:
            ib.disconnect()
        if held.get(con_id) == quantity:
            return
        assert time.monotonic() < deadline, f"position {held.get(con_id)} never reached {quantity}"
        time.sleep(0.2)


def test_a_hundred_and_ten_leg_allocation_sends_each_leg_once(
    trading: Callable[..., Trading],
) -> None:
    """110 instruments: every leg submitted before any is awaited, within IB's message rate
    (no error 100, no disconnect), each one order at the broker, all filled and booked."""
    stack = trading(scenario="large_universe")  # 120 synthetic NYSE stocks U001..U120
    symbols = [f"U{n:03d}" for n in range(1, 111)]
    weights = {"fixed_weights": {"weights": dict.fromkeys(symbols, 0.008)}}
    stack.config.set(allocation_config({"fixed_weights": 1.0}, weights))
    before = stack.run("summary", {"sections": ["values"]}, "wide-before").data["gateway"]
    outcome = stack.run("allocation", {"wait_seconds": 60}, "wide-1")
    assert outcome.kind == "succeeded", outcome.data
    legs = outcome.data["result"]["legs"]
    assert sorted(leg["contract"]["symbol"] for leg in legs) == symbols
    assert {leg["status"] for leg in legs} == {"Filled"}
    assert outcome.data["gateway"]["connects"] == before["connects"], "never cut for pacing"
    assert outcome.data["result"]["booked"] >= len(symbols)
    held = stack.holdings("fixed_weights")
    assert held == {str(leg["contract"]["con_id"]): leg["filled"] for leg in legs}
    at_broker = orders_by_ref(stack.sim)
    assert all(len(at_broker[leg["order_ref"]]) == 1 for leg in legs), "one order per leg"


def orders_by_ref(sim: Any) -> dict[str, set[int]]:
    """PermIds of every order at ibsim by orderRef (one client connection for all)."""
    ib = iblib.IB()
    iblib.connect(ib, sim.host, sim.port, client_id=93)
    try:
        trades = ib.reqAllOpenOrders() + ib.reqCompletedOrders(apiOnly=False)
    finally:
        ib.disconnect()
    found: dict[str, set[int]] = {}
    for trade in trades:
        found.setdefault(trade.order.orderRef, set()).add(trade.order.permId)
    return found
