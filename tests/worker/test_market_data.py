"""collect_market_data into the BigQuery fake, within IB's historical pacing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bigquery_fixtures import BIGQUERY_PROJECT
from worker.broker import pacing
from worker.broker.pacing import Budget, HistoricalPacer

PARAMS = {"symbols": ["SPY", "QQQ", "TLT"], "bar_size": "1 day", "duration": "5 D"}


def rows(fake: Any, table: str) -> list[dict]:
    return fake.rows("ib_trading", table, BIGQUERY_PROJECT)


def collect(stack: Any, key: str, **params: Any) -> dict[str, Any]:
    body = {**PARAMS, **params}
    reply = stack.push("collect-market-data", body, "m-" + key, idempotency_key=key)
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1)
    assert outcome.kind == "succeeded", outcome.data
    return outcome.data["result"]


@pytest.mark.emulators
def test_bars_and_quotes_land_once_however_often_collected(inproc, bigquery_fake) -> None:
    stack = inproc(bigquery=bigquery_fake)
    first = collect(stack, "c-1")
    assert first["complete"] is True
    assert first["quotes"] == 3
    bars = rows(bigquery_fake, "bars")
    assert len(bars) == first["bars"] > 0
    assert {r["symbol"] for r in bars} == {"SPY", "QQQ", "TLT"}
    assert len(rows(bigquery_fake, "quotes")) == 3
    again = collect(stack, "c-2", duration="4 D")  # a later run: the same bars, mostly
    assert 0 < again["bars"] < first["bars"]
    assert len(rows(bigquery_fake, "bars")) == len(bars), "insertIds keep them unique"


def collect_incomplete(stack: Any, key: str, **params: Any) -> dict[str, Any]:
    reply = stack.push("collect_market_data", {**PARAMS, **params}, "m-" + key, idempotency_key=key)
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1)
    assert (outcome.kind, outcome.data["error"]["code"]) == ("failed", "incomplete"), outcome.data
    return outcome.data["error"]["details"]["result"]


@pytest.mark.emulators
def test_an_unknown_symbol_is_listed_and_the_rest_collected(inproc, bigquery_fake) -> None:
    stack = inproc(bigquery=bigquery_fake)
    result = collect_incomplete(stack, "u-1", symbols=["SPY", "NOSUCH", "TLT"])
    [missing] = result["missing"]
    assert (missing["symbol"], missing["code"]) == ("NOSUCH", "contract_not_found")
    assert "IB 200" in missing["message"]
    assert {r["symbol"] for r in rows(bigquery_fake, "bars")} == {"SPY", "TLT"}
    assert {r["symbol"] for r in rows(bigquery_fake, "quotes")} == {"SPY", "TLT"}
    assert result["complete"] is True, "the round ended: the next run starts over"


@pytest.mark.emulators
def test_bars_ib_refuses_are_a_permanent_answer_naming_ib(inproc, bigquery_fake) -> None:
    # IB's 162 here is its data service refusing the bar size, not pacing: retrying the
    # delivery cannot help (it was retried as an internal error before).
    stack = inproc(bigquery=bigquery_fake)
    result = collect_incomplete(stack, "b-1", bar_size="7 mins", snapshots=False)
    assert [(m["symbol"], m["code"]) for m in result["missing"]] == [
        ("SPY", "data_refused"),
        ("QQQ", "data_refused"),
        ("TLT", "data_refused"),
    ]
    assert all(m["message"].startswith("IB 162: ") for m in result["missing"])
    assert rows(bigquery_fake, "bars") == []


@pytest.mark.emulators
def test_a_spent_budget_stops_and_the_next_run_continues(
    inproc, bigquery_fake, monkeypatch
) -> None:
    stack = inproc(bigquery=bigquery_fake)
    nearly_spent = HistoricalPacer()
    for n in range(pacing.WINDOW[0] - 1):
        nearly_spent.sent(f"c{n}", f"r{n}")
    monkeypatch.setattr("worker.broker.ib.PACER", nearly_spent)
    partial = collect(stack, "p-1")
    assert (partial["complete"], partial["continues_at"]) == (False, "QQQ")
    assert {r["symbol"] for r in rows(bigquery_fake, "bars")} == {"SPY"}
    monkeypatch.setattr("worker.broker.ib.PACER", HistoricalPacer())
    rest = collect(stack, "p-2")
    assert rest["complete"] is True
    assert {r["symbol"] for r in rows(bigquery_fake, "bars")} == {"SPY", "QQQ", "TLT"}


def test_pacing_rules() -> None:
    now = [0.0]
    pacer = HistoricalPacer(clock=lambda: now[0])
    pacer.sent("SPY", "same")
    assert pacer.admit("SPY", "same") == pytest.approx(15.0)  # identical within 15 s
    for n in range(4):
        pacer.sent("SPY", f"other{n}")
    assert pacer.admit("SPY", "new") == pytest.approx(2.0)  # 5 for one contract in 2 s
    assert pacer.admit("QQQ", "new") == 0.0
    for n in range(55):
        pacer.sent(f"c{n}", f"r{n}")
    with pytest.raises(Budget):
        pacer.admit("QQQ", "more")  # 60 in 10 minutes
    now[0] = 600.0
    assert pacer.admit("QQQ", "more") == 0.0
