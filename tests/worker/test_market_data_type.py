"""The market data type fallback is driven by IB's answer: a live request refused with 354
(ibsim without live data, as an unpaid login) is asked again as delayed at once, and results
say which type priced them and why."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ibsim.market import Clock
from ibsim.scenario import SCENARIO_DIR
from tests.worker.conftest import MARKET_OPEN, ready_session
from worker.broker.ib import Gateway
from worker.intents.trading import QUOTE_SECONDS

pytestmark = pytest.mark.ib_client  # also under ib_insync: errorEvent and reqIds in both
BUY_SPY = {"symbol": "SPY", "side": "BUY", "quantity": 10, "order_type": "MKT"}
SPY = {"symbol": "SPY", "sec_type": "STK", "exchange": "SMART", "currency": "USD"}
NOT_SUBSCRIBED = 354  # what ibsim (and IB) answer a live request without live data


@pytest.fixture
def delayed_only(tmp_path: Path) -> str:
    """The default scenario's account on a login without live market data."""
    scenario = yaml.safe_load((SCENARIO_DIR / "default.yaml").read_text(encoding="utf-8"))
    scenario.setdefault("options", {})["live_market_data"] = False
    path = tmp_path / "delayed_only.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    return str(path)


@pytest.fixture
def quote_requests(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every reqMktData the worker makes: the type asked, how long it took, IB's refusal."""
    seen: list[dict[str, Any]] = []
    real = Gateway._quote

    async def spy(self: Gateway, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        prices, refusal = await real(self, *args, **kwargs)
        took = time.monotonic() - started
        seen.append({"type": args[1], "seconds": took, "refusal": refusal, "prices": prices})
        return prices, refusal

    monkeypatch.setattr(Gateway, "_quote", spy)
    return seen


def dry_place_order(stack: Any, key: str) -> dict[str, Any]:
    stack.firestore.collection("config").document("common").set({"marketDataType": 1})
    reply = stack.push("place_order", BUY_SPY, "m-" + key, idempotency_key=key, dry_run="true")
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1)
    assert outcome.kind == "succeeded", outcome.data
    return outcome.data["result"]


@pytest.mark.emulators
def test_live_data_refused_prices_with_delayed_data_and_says_so(
    inproc: Callable[..., Any], delayed_only: str, quote_requests: list[dict[str, Any]]
) -> None:
    result = dry_place_order(inproc(scenario=delayed_only), "md-delayed")
    assert result["market_data_type"] == 3
    assert result["market_data_fallback"]["code"] == NOT_SUBSCRIBED
    assert "not subscribed" in result["market_data_fallback"]["message"]
    assert result["price_source"] == "midpoint"
    live, delayed = quote_requests
    assert (live["type"], live["refusal"][0]) == (1, NOT_SUBSCRIBED)
    # IB's answer ended the live request, not an empty quote's full wait.
    assert live["seconds"] < QUOTE_SECONDS / 2, live
    assert (delayed["type"], delayed["refusal"]) == (3, None)
    assert delayed["prices"]["bid"]
    assert delayed["prices"]["ask"]


@pytest.mark.emulators
def test_live_data_is_used_when_subscribed(
    inproc: Callable[..., Any], quote_requests: list[dict[str, Any]]
) -> None:
    result = dry_place_order(inproc(), "md-live")
    assert (result["market_data_type"], result["market_data_fallback"]) == (1, None)
    assert [(q["type"], q["refusal"]) for q in quote_requests] == [(1, None)]


@pytest.mark.emulators
def test_allocation_prices_name_the_market_data_type(
    inproc: Callable[..., Any], delayed_only: str
) -> None:
    stack = inproc(scenario=delayed_only)
    doc = {
        "marketDataType": 1,
        "exposure": {"overall": 0.5, "strategies": {"fixed_weights": 0.5}},
        "strategies": {"fixed_weights": {"weights": {"SPY": 1.0}}},
    }
    stack.firestore.collection("config").document("common").set(doc)
    reply = stack.push("allocation", {}, "m-md-alloc", idempotency_key="md-alloc", dry_run="true")
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1)
    [price] = outcome.data["result"]["prices"].values()
    assert (price["source"], price["market_data_type"]) == ("midpoint", 3)
    assert price["market_data_fallback"]["code"] == NOT_SUBSCRIBED


@pytest.mark.parametrize(("asked", "used"), [(1, 3), (2, 4)])
def test_the_gateway_falls_back_on_the_error_without_waiting(
    ibsim_factory: Callable[..., Any], delayed_only: str, asked: int, used: int
) -> None:
    sim = ibsim_factory(scenario=delayed_only, clock=Clock(MARKET_OPEN, frozen=True))
    session = ready_session(sim, 17)
    try:
        wait = 10.0
        for attempt in range(2):  # the second on a ticker the library kept from the first
            started = time.monotonic()
            quote = session.call(lambda gw: gw.quote(SPY, asked, wait), 3 * wait)
            took = time.monotonic() - started
            assert quote["requested_market_data_type"] == asked
            assert quote["market_data_type"] == used, attempt
            assert quote["fallback"]["code"] == NOT_SUBSCRIBED
            assert quote["bid"]
            assert quote["ask"]
            assert took < wait / 2, f"the refusal should end the live request, took {took:.1f}s"
    finally:
        session.stop()


def test_a_delayed_type_has_nothing_to_fall_back_to(
    ibsim_factory: Callable[..., Any], delayed_only: str
) -> None:
    sim = ibsim_factory(scenario=delayed_only, clock=Clock(MARKET_OPEN, frozen=True))
    session = ready_session(sim, 18)
    try:
        quote = session.call(lambda gw: gw.quote(SPY, 3, 5.0), 15.0)
    finally:
        session.stop()
    assert (quote["market_data_type"], quote["fallback"]) == (3, None)
    assert quote["bid"]
    assert quote["ask"]
