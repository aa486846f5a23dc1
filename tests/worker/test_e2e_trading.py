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
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from ibsim.market import Clock
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
    config: firestore.DocumentReference
    worker_log: Path

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
    client = firestore.Client(project=emulator_env.project, credentials=AnonymousCredentials())

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
        config = client.collection("config").document("common")
        return Trading(sim, pubsub, config, worker.process.log_path)

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
