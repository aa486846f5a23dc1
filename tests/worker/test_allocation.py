"""allocation end to end in-process: strategies from the Firestore config, one order per
instrument at ibsim, fills booked to the strategies' holdings once."""

from __future__ import annotations

from typing import Any

import pytest

from worker.broker import pacing
from worker.broker.pacing import HistoricalPacer

pytestmark = pytest.mark.emulators


def configure(stack: Any, shares: dict[str, float], strategies: dict[str, Any]) -> None:
    doc = {"exposure": {"overall": 0.5, "strategies": shares}, "strategies": strategies}
    stack.firestore.collection("config").document("common").set(doc)


def holdings(stack: Any, strategy: str) -> dict[str, float]:
    ref = stack.firestore.collection("positions").document("paper")
    return ref.collection("holdings").document(strategy).get().to_dict() or {}


def allocate(stack: Any, key: str, **attrs: str) -> Any:
    reply = stack.push("allocation", {"wait_seconds": 10}, "m-" + key, idempotency_key=key, **attrs)
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1)
    return outcome


SIXTY_FORTY = {"fixed_weights": {"weights": {"SPY": 0.6, "TLT": 0.4}}}


def test_a_sixty_forty_portfolio_is_bought_once(inproc) -> None:
    stack = inproc()
    configure(stack, {"fixed_weights": 0.5}, SIXTY_FORTY)
    outcome = allocate(stack, "a-1")
    assert outcome.kind == "succeeded", outcome.data
    legs = {leg["contract"]["symbol"]: leg for leg in outcome.data["result"]["legs"]}
    assert set(legs) == {"SPY", "TLT"}
    assert {leg["status"] for leg in legs.values()} == {"Filled"}
    assert all(leg["order"]["order_type"] == "LMT" for leg in legs.values())
    held = holdings(stack, "fixed_weights")
    assert held == {str(leg["contract"]["con_id"]): leg["filled"] for leg in legs.values()}
    again = allocate(stack, "a-2")
    assert again.data["result"]["legs"] == [], "targets already held: nothing to order"


def test_dry_run_shows_the_plan_and_sends_nothing(inproc) -> None:
    stack = inproc()
    configure(stack, {"fixed_weights": 0.5}, SIXTY_FORTY)
    outcome = allocate(stack, "dry", dry_run="true")
    result = outcome.data["result"]
    assert result["dry_run"] is True
    assert len(result["legs"]) == 2
    assert set(result["targets"]["fixed_weights"].values()) == {
        leg["order"]["quantity"] for leg in result["legs"]
    }
    assert {c["rule"] for c in result["checks"]} >= {"max_order_notional", "max_gross_leverage"}
    assert holdings(stack, "fixed_weights") == {}
    assert stack.record("dry")["legs"] == {}


def frozen_beside_sixty_forty(stack: Any, key: str) -> dict[str, Any]:
    """Allocate; the one failed strategy of an outcome in which SIXTY_FORTY still traded."""
    outcome = allocate(stack, key)
    # Never a plain success: failed (incomplete), with what did trade in the details.
    assert (outcome.kind, outcome.data["error"]["code"]) == ("failed", "incomplete")
    result = outcome.data["error"]["details"]["result"]
    assert {leg["contract"]["symbol"] for leg in result["legs"]} == {"SPY", "TLT"}
    assert {leg["status"] for leg in result["legs"]} == {"Filled"}
    sent = {leg["contract"]["symbol"] for leg in outcome.data["legs"].values()}
    assert sent == {"SPY", "TLT"}, "nothing of the frozen strategy was journalled"
    [frozen] = result["failed"]
    return frozen


def test_a_failing_strategy_freezes_only_itself(inproc) -> None:
    stack = inproc()
    strategies = {**SIXTY_FORTY, "dummy": {"weights": {"AAPL": 0.5}, "fail": True}}
    configure(stack, {"fixed_weights": 0.4, "dummy": 0.4}, strategies)
    frozen = frozen_beside_sixty_forty(stack, "f-1")
    assert (frozen["strategy"], frozen["reason"]) == ("dummy", "error")


def test_an_instrument_without_a_price_freezes_only_the_strategies_weighing_it(inproc) -> None:
    stack = inproc()
    strategies = {**SIXTY_FORTY, "dummy": {"weights": {"AAPL": 0.2, "NOSUCH": 0.3}}}
    configure(stack, {"fixed_weights": 0.4, "dummy": 0.4}, strategies)
    frozen = frozen_beside_sixty_forty(stack, "np-1")  # AAPL, priced, is frozen with it
    assert (frozen["strategy"], frozen["reason"]) == ("dummy", "missing_data")
    assert "NOSUCH" in frozen["message"]


def test_bars_ib_will_not_serve_now_freeze_only_the_strategy_needing_them(
    inproc, monkeypatch
) -> None:
    stack = inproc()
    spent = HistoricalPacer()  # another job used this 10 minutes' historical requests
    for n in range(pacing.WINDOW[0]):
        spent.sent(f"c{n}", f"r{n}")
    monkeypatch.setattr("worker.broker.ib.PACER", spent)
    strategies = {**SIXTY_FORTY, "spy_macd_vixy": {}}
    configure(stack, {"fixed_weights": 0.4, "spy_macd_vixy": 0.4}, strategies)
    frozen = frozen_beside_sixty_forty(stack, "pace-1")
    assert (frozen["strategy"], frozen["reason"]) == ("spy_macd_vixy", "missing_data")
    assert "historical requests" in frozen["message"]


def test_two_strategies_sharing_an_instrument_get_one_order(inproc) -> None:
    stack = inproc()
    strategies = {
        "fixed_weights": {"weights": {"SPY": 0.5}},
        "dummy": {"weights": {"SPY": -0.2}},
    }
    configure(stack, {"fixed_weights": 0.5, "dummy": 0.5}, strategies)
    result = allocate(stack, "s-1").data["result"]
    [leg] = result["legs"]
    [cross] = result["crosses"]
    fixed, dummy = (holdings(stack, s) for s in ("fixed_weights", "dummy"))
    con = str(leg["contract"]["con_id"])
    assert leg["order"]["action"] == "BUY"
    assert fixed[con] > 0 > dummy[con]
    assert fixed[con] + dummy[con] == pytest.approx(leg["filled"]), "crossing needs no broker order"
    assert cross["cross"]["dummy"] == pytest.approx(dummy[con])


def test_orders_in_flight_are_not_ordered_again(inproc) -> None:
    stack = inproc()
    configure(stack, {"fixed_weights": 0.5}, {"fixed_weights": {"weights": {"SPY": 0.5}}})
    stack.sim.faults.freeze_fills()
    first = stack.push("allocation", {"wait_seconds": 0}, "m-i1", idempotency_key="i-1")
    assert first.status_code == 200
    [outcome] = stack.outcomes(1)
    [leg] = outcome.data["result"]["legs"]
    assert leg["status"] in ("Submitted", "PreSubmitted")
    second = stack.push("allocation", {"wait_seconds": 0}, "m-i2", idempotency_key="i-2")
    assert second.status_code == 200
    [outcome] = stack.outcomes(1)
    assert outcome.data["result"]["legs"] == [], "the working order already covers the target"


def test_futures_are_sized_with_their_multiplier_and_fills_are_booked(inproc) -> None:
    stack = inproc(scenario="futures")
    mes = {"symbol": "MES", "sec_type": "FUT", "exchange": "CME", "last_trade_date": "202612"}
    strategies = {"fixed_weights": {"weights": {"MES": 0.5}, "instruments": {"MES": mes}}}
    configure(stack, {"fixed_weights": 1.0}, strategies)
    summary = stack.client.post("/intents/summary", json={"sections": ["values"]}).json
    net_liq = float(summary["result"]["values"]["NetLiquidation"]["USD"])
    stack.outcomes(1)
    plan = allocate(stack, "fut-dry", dry_run="true").data["result"]
    [(con, target)] = plan["targets"]["fixed_weights"].items()
    price = plan["prices"][con]["price"]
    assert target == int(net_liq * 0.5 * 0.5 / (price * 5))  # multiplier 5, toward zero
    [leg] = allocate(stack, "fut").data["result"]["legs"]
    assert leg["order"]["quantity"] == target
    assert holdings(stack, "fixed_weights") == {con: leg["filled"]}


def test_a_leg_over_a_limit_stops_the_plan_before_any_order_leaves(inproc) -> None:
    """Limits are known from the plan: one leg over a limit refuses the run before the first
    order is sent, not after the legs ahead of it are at IB."""
    stack = inproc()
    weights = {"fixed_weights": {"weights": {"SPY": 0.1, "TLT": 0.4}}}
    configure(stack, {"fixed_weights": 0.5}, weights)
    doc = stack.firestore.collection("config").document("common")
    doc.set({"risk": {"max_order_notional": 60_000}}, merge=True)  # SPY ~27k fits, TLT ~108k not
    outcome = allocate(stack, "over")
    assert (outcome.kind, outcome.data["error"]["code"]) == ("rejected", "risk_refused")
    assert "TLT" in outcome.data["error"]["message"]
    assert stack.record("over")["legs"] == {}, "no leg was sent"
    assert not outcome.data.get("legs")
