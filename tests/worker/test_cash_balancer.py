"""cash_balancer on ibsim's EUR-base multi-currency account, and its pair arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ibsim import iblib
from worker.intents.cash_balancer import conversion, pair

THRESHOLD = {"cashBalanceThresholdInBaseCurrency": 10_000}


@pytest.mark.parametrize(
    ("currency", "base", "expected"),
    [
        ("USD", "EUR", ("EUR", "USD")),
        ("EUR", "USD", ("EUR", "USD")),
        ("USD", "CHF", ("USD", "CHF")),
        ("CHF", "EUR", ("EUR", "CHF")),
        ("JPY", "USD", ("USD", "JPY")),
        ("GBP", "EUR", ("EUR", "GBP")),
    ],
)
def test_the_pair_is_the_one_ib_lists(currency, base, expected) -> None:
    assert pair(currency, base) == expected


def test_conversions_round_symmetrically_toward_zero() -> None:
    sell_eur = conversion(25_499, "EUR", "USD", 1.08, 1000)
    buy_back = conversion(-25_499, "EUR", "USD", 1.08, 1000)
    assert sell_eur["order"] == {"action": "SELL", "quantity": 25_000, "order_type": "MKT"}
    assert buy_back["order"] == {"action": "BUY", "quantity": 25_000, "order_type": "MKT"}
    usd_to_eur = conversion(150_000, "USD", "EUR", 1.08, 1000)
    assert usd_to_eur["order"]["action"] == "BUY"  # EUR.USD: buy EUR, pay USD
    assert usd_to_eur["order"]["quantity"] == 138_000
    assert usd_to_eur["contract"]["exchange"] == "FXCONV"


def cash(sim: Any, account: str) -> dict[str, float]:
    ib = iblib.IB()
    iblib.connect(ib, sim.host, sim.port, client_id=94)
    try:
        rows = ib.accountValues(account)
        if not rows:
            ib.reqAccountUpdates(account)
            rows = ib.accountValues(account)
        return {v.currency: float(v.value) for v in rows if v.tag == "CashBalance"}
    finally:
        ib.disconnect()


@pytest.mark.emulators
@pytest.mark.ib_client
def test_foreign_cash_goes_back_to_the_eur_base(inproc) -> None:
    stack = inproc(scenario="multi_currency")
    stack.firestore.collection("config").document("common").set(THRESHOLD)
    reply = stack.push("cash-balancer", {}, "m-cb", idempotency_key="cb")
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1)
    assert outcome.kind == "succeeded", outcome.data
    legs = {leg["leg_id"]: leg for leg in outcome.data["result"]["legs"]}
    assert set(legs) == {"fx-USD", "fx-GBP", "fx-JPY"}
    assert {leg["status"] for leg in legs.values()} == {"Filled"}
    left = cash(stack.sim, "DU2345678")
    for currency in ("USD", "GBP", "JPY"):
        in_eur = abs(left.get(currency, 0.0)) * (1 / 150 if currency == "JPY" else 1.0)
        assert in_eur < 10_000, (currency, left)


@pytest.mark.emulators
def test_a_usd_base_account_never_asks_for_a_usd_usd_rate(inproc) -> None:
    stack = inproc()  # USD base, USD cash only
    stack.firestore.collection("config").document("common").set(THRESHOLD)
    assert stack.push("cash_balancer", {}, "m-u", idempotency_key="usd").status_code == 200
    [outcome] = stack.outcomes(1)
    assert outcome.kind == "succeeded", outcome.data
    assert outcome.data["result"]["legs"] == []
    assert "USD" not in outcome.data["result"]["balances"]


@pytest.mark.emulators
def test_a_rejected_conversion_fails_the_run(inproc) -> None:
    stack = inproc(scenario="multi_currency")
    stack.firestore.collection("config").document("common").set(THRESHOLD)
    stack.sim.faults.reject_next("FX desk closed for the test")
    body = {"currencies": ["USD"]}
    assert stack.push("cash_balancer", body, "m-r", idempotency_key="rej").status_code == 200
    [outcome] = stack.outcomes(1)
    assert (outcome.kind, outcome.data["error"]["code"]) == ("failed", "order_rejected")
    [leg] = outcome.data["error"]["details"]["legs"]
    assert leg["rejected"] is True
