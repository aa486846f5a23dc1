"""place_order through the risk gate, in-process on the emulators and ibsim."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ibsim.market import Clock

pytestmark = pytest.mark.emulators
BUY_SPY = {"symbol": "SPY", "side": "BUY", "quantity": 10, "order_type": "MKT"}
THANKSGIVING = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


def config(stack, **risk) -> None:
    stack.firestore.collection("config").document("common").set({"risk": risk})


def test_a_limit_refuses_naming_rule_limit_and_value(inproc) -> None:
    stack = inproc()
    config(stack, max_order_notional=1000)
    reply = stack.push("place_order", BUY_SPY, "m-lim", idempotency_key="lim")
    assert reply.status_code == 200
    [outcome] = stack.outcomes(1)
    assert (outcome.kind, outcome.data["error"]["code"]) == ("rejected", "risk_refused")
    assert "max_order_notional" in outcome.data["error"]["message"]
    [bad] = [c for c in outcome.data["error"]["details"]["checks"] if not c["ok"]]
    assert bad["limit"] == 1000
    assert bad["value"] > 1000
    assert stack.record("lim")["legs"] == {}, "nothing was journalled or sent"


def test_dry_run_reports_every_check_and_places_nothing(inproc) -> None:
    stack = inproc()
    config(stack, max_order_notional=1000)
    reply = stack.push("place_order", BUY_SPY, "m-dr", idempotency_key="dr", dry_run="true")
    assert reply.status_code == 200
    [outcome] = stack.outcomes(1)
    result = outcome.data["result"]
    rules = {c["rule"]: c["ok"] for c in result["checks"]}
    assert rules["max_order_notional"] is False
    assert rules["market_hours"] is True
    assert result["price_source"] == "midpoint"
    assert result["legs"][0]["state"] == "dry_run"


@pytest.mark.parametrize(("when_closed", "kind"), [("refuse", "rejected"), ("skip", "skipped")])
def test_a_closed_market_refuses_or_skips(inproc, when_closed, kind) -> None:
    stack = inproc(clock=Clock(THANKSGIVING, frozen=True))
    config(stack, when_closed=when_closed)
    reply = stack.push("place_order", BUY_SPY, "m-cl", idempotency_key="cl")
    assert reply.status_code == 200
    [outcome] = stack.outcomes(1)
    assert outcome.kind == kind
    assert "market" in outcome.data["error"]["message"]
