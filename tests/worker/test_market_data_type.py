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
NO_DATA = 10168  # ... and a delayed one when delayed data is not enabled either


def _login(tmp_path: Path, name: str, **options: bool) -> str:
    """The default scenario's account on a login with these market data ``options``."""
    scenario = yaml.safe_load((SCENARIO_DIR / "default.yaml").read_text(encoding="utf-8"))
    scenario.setdefault("options", {}).update(options)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    return str(path)


@pytest.fixture
def delayed_only(tmp_path: Path) -> str:
    """A login without live market data (delayed data is enabled)."""
    return _login(tmp_path, "delayed_only", live_market_data=False)


@pytest.fixture
def no_data(tmp_path: Path) -> str:
    """A login with no market data at all: neither live nor delayed."""
    return _login(tmp_path, "no_data", live_market_data=False, delayed_market_data=False)


@pytest.fixture
def quote_requests(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every reqMktData the worker makes: the type asked, how long it took, IB's answers."""
    seen: list[dict[str, Any]] = []
    real = Gateway._quote

    async def spy(self: Gateway, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        prices, answers = await real(self, *args, **kwargs)
        took = time.monotonic() - started
        codes = [code for code, _ in answers]
        seen.append({"type": args[1], "seconds": took, "codes": codes, "prices": prices})
        return prices, answers

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
    assert (live["type"], live["codes"]) == (1, [NOT_SUBSCRIBED])
    # IB's answer ended the live request, not an empty quote's full wait.
    assert live["seconds"] < QUOTE_SECONDS / 2, live
    assert (delayed["type"], delayed["codes"]) == (3, [])
    assert delayed["prices"]["bid"]
    assert delayed["prices"]["ask"]


@pytest.mark.emulators
def test_live_data_is_used_when_subscribed(
    inproc: Callable[..., Any], quote_requests: list[dict[str, Any]]
) -> None:
    result = dry_place_order(inproc(), "md-live")
    assert (result["market_data_type"], result["market_data_fallback"]) == (1, None)
    assert [(q["type"], q["codes"]) for q in quote_requests] == [(1, [])]


@pytest.mark.emulators
def test_no_data_at_all_fails_naming_ibs_answer_without_waiting(
    inproc: Callable[..., Any], no_data: str, quote_requests: list[dict[str, Any]]
) -> None:
    stack = inproc(scenario=no_data)
    stack.firestore.collection("config").document("common").set({"marketDataType": 1})
    reply = stack.push("place_order", BUY_SPY, "m-md-none", idempotency_key="md-none")
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1)
    assert (outcome.kind, outcome.data["error"]["code"]) == ("failed", "no_price")
    message = outcome.data["error"]["message"]
    assert message.startswith("no price for SPY: no quote, last trade or close (IB 10168: ")
    assert "Delayed market data is not enabled" in message
    assert [(q["type"], q["codes"]) for q in quote_requests] == [
        (1, [NOT_SUBSCRIBED]),
        (3, [NO_DATA]),
    ]
    # Both requests ended on IB's answer, not after a full wait for prices that never come.
    assert all(q["seconds"] < QUOTE_SECONDS / 2 for q in quote_requests), quote_requests
    assert stack.record("md-none")["legs"] == {}, "nothing was journalled or sent"


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
    assert (quote["market_data_type"], quote["fallback"], quote["refused"]) == (3, None, None)
    assert quote["bid"]
    assert quote["ask"]
