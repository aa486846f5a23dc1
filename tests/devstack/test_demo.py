"""The demo's steps and its verdict on outcome events (pure; a small fake for Pub/Sub)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from worker.devstack.demo import (
    PERMANENT_FAILURE,
    Step,
    check_outcomes,
    demo_account,
    outcome_legs,
    outcome_printer,
    run_demo,
)
from worker.devstack.pubsub_setup import Outcome

SUMMARY = Step("summary", "summary", {}, frozenset({"succeeded"}))
UNKNOWN = Step("unknown intent", "nope", {}, PERMANENT_FAILURE)
EXPECTED = {"k-sum": SUMMARY, "k-0": UNKNOWN}


def outcome(key: str, kind: str, event_id: str) -> Outcome:
    return Outcome(
        id=event_id,
        type=f"io.github.ibcloudrun.intent.{kind}",
        source="//s",
        subject="summary",
        time="",
        attributes={},
        data={"idempotency_key": key},
        message_id="1",
    )


def test_all_expected_and_a_replayed_duplicate_pass() -> None:
    got = [
        outcome("k-sum", "succeeded", "a"),
        outcome("k-sum", "succeeded", "a"),
        outcome("k-0", "rejected", "b"),
    ]
    assert check_outcomes(EXPECTED, got, 5) == []


def test_second_distinct_event_for_one_key_fails() -> None:
    got = [
        outcome("k-sum", "succeeded", "a"),
        outcome("k-sum", "succeeded", "c"),
        outcome("k-0", "failed", "b"),
    ]
    assert check_outcomes(EXPECTED, got, 5) == ["summary: 2 distinct outcome events for one key"]


def test_missing_wrong_kind_and_stray_outcomes_are_reported() -> None:
    got = [outcome("k-sum", "failed", "a"), outcome("other", "succeeded", "x")]
    assert check_outcomes(EXPECTED, got, 5) == [
        "unexpected outcome for key 'other'",
        "summary: expected succeeded, got failed",
        "unknown intent: no outcome event arrived within 5s",
    ]


def test_demo_names_an_account_only_when_the_login_serves_several() -> None:
    said: list[str] = []
    assert demo_account([], said.append) is None
    assert demo_account(["DU1"], said.append) is None
    assert said == []
    assert demo_account(["DU1", "DU2"], said.append) == "DU1"
    assert said == ["-> the login serves DU1, DU2; the demo's intents name DU1"]


ORDER = Step("place_order", "place_order", {}, frozenset({"succeeded"}), "Filled")


def order_outcome(key: str, kind: str, *statuses: str, event_id: str = "o") -> Outcome:
    legs = [{"leg_id": f"leg{i}", "status": s} for i, s in enumerate(statuses)]
    got = outcome(key, kind, event_id)
    return replace(got, data={"idempotency_key": key, "result": {"legs": legs}})


def test_an_order_step_needs_every_leg_in_the_expected_status() -> None:
    assert check_outcomes({"k": ORDER}, [order_outcome("k", "succeeded", "Filled")], 5) == []
    got = [order_outcome("k", "succeeded", "Filled", "PreSubmitted")]
    assert check_outcomes({"k": ORDER}, got, 5) == [
        "place_order: leg leg1 is PreSubmitted, expected Filled"
    ]
    assert check_outcomes({"k": ORDER}, [order_outcome("k", "succeeded")], 5) == [
        "place_order: the result lists no legs"
    ]


def test_a_wrong_kind_names_the_outcome_error() -> None:
    got = replace(outcome("k", "failed", "a"), data={"idempotency_key": "k", "error": REJECTED})
    assert check_outcomes({"k": ORDER}, [got], 5) == [
        "place_order: expected succeeded, got failed (order_rejected: IB 201: no margin)"
    ]


REJECTED = {
    "code": "order_rejected",
    "message": "IB 201: no margin",
    "details": {"legs": [{"leg_id": "order", "status": "Inactive"}]},
}


def test_legs_come_from_the_result_or_a_rejection_details() -> None:
    assert outcome_legs(order_outcome("k", "succeeded", "Filled")) == [
        {"leg_id": "leg0", "status": "Filled"}
    ]
    rejected = replace(outcome("k", "failed", "a"), data={"error": REJECTED})
    assert outcome_legs(rejected) == [{"leg_id": "order", "status": "Inactive"}]
    assert outcome_legs(replace(rejected, data="not json")) == []


def test_the_printer_adds_one_line_per_leg() -> None:
    leg = {
        "leg_id": "order",
        "order_ref": "ibw:abc:order",
        "status": "Filled",
        "filled": 10.0,
        "avg_price": 600.5,
        "commission": 0.35,
        "contract": {"symbol": "SPY"},
    }
    got = replace(outcome("k", "succeeded", "a"), data={"result": {"legs": [leg]}})
    said: list[str] = []
    outcome_printer(said.append)(got)
    assert said[-1] == (
        "          leg order  order_ref=ibw:abc:order  status=Filled  filled=10.0"
        "  avg_price=600.5  commission=0.35"
    )
    assert said[0].startswith("<- outcome SUCCEEDED")


class FakePubSub:
    """Answers each new idempotency key with one outcome, as a conforming worker would."""

    def __init__(self, order_status: str = "Filled") -> None:
        self.order_status = order_status
        self.published: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.pending: list[Outcome] = []

    def publish_raw(self, data: bytes, attributes: dict[str, str]) -> str:
        envelope = json.loads(data)
        key = attributes["idempotency_key"]
        if key not in {a["idempotency_key"] for _, a in self.published}:
            self.pending.append(self._answer(envelope, key))
        self.published.append((envelope, dict(attributes)))
        return str(len(self.published))

    def _answer(self, envelope: dict[str, Any], key: str) -> Outcome:
        if envelope["intent"] == "place_order":
            return order_outcome(key, "succeeded", self.order_status, event_id=key)
        ok = envelope["intent"] == "summary" and envelope["params"] == {}
        return outcome(key, "succeeded" if ok else "rejected", key)

    def pull_outcomes(
        self, timeout: float, expected: int, on_outcome: Callable[[Outcome], None]
    ) -> list[Outcome]:
        got, self.pending = self.pending[:expected], self.pending[expected:]
        for o in got:
            on_outcome(o)
        return got


def test_run_demo_places_one_order_then_repeats_both_keys() -> None:
    pubsub = FakePubSub()
    said: list[str] = []
    assert run_demo(pubsub, said.append, 5, account="DU2") == []
    intents = [(e["intent"], a["idempotency_key"].rsplit("-", 1)[1]) for e, a in pubsub.published]
    assert intents == [
        ("summary", "summary"),
        ("place_order", "order"),
        ("summary", "summary"),
        ("place_order", "order"),
        ("no_such_intent", "0"),
        ("summary", "1"),
    ]
    assert pubsub.published[1][0]["params"] == {
        "symbol": "SPY",
        "side": "BUY",
        "quantity": 10,
        "order_type": "MKT",
    }
    assert pubsub.published[3] == pubsub.published[1]  # the same message again
    assert {a["account"] for _, a in pubsub.published} == {"DU2"}
    assert any(line.startswith("-> publish the same place_order again") for line in said)
    assert sum(line.startswith("          leg leg0") for line in said) == 1


def test_run_demo_fails_when_the_order_does_not_fill() -> None:
    problems = run_demo(FakePubSub("PreSubmitted"), lambda line: None, 5)
    assert problems == ["place_order: leg leg0 is PreSubmitted, expected Filled"]
