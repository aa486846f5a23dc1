"""The demo's steps and its verdict on outcome events (pure; a small fake for Pub/Sub)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import Any

from google.api_core import exceptions as gexc

from tests.devstack.standins import fake_result
from worker.devstack.demo import (
    PERMANENT_FAILURE,
    TRADING_CONFIG,
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


def printed(intent: str, result: dict[str, Any]) -> list[str]:
    """The printer's lines after the outcome summary, for one result."""
    got = replace(outcome("k", "succeeded", "a"), subject=intent, data={"result": result})
    said: list[str] = []
    outcome_printer(said.append)(got)
    return [line for line in said if not line.startswith("<- outcome")]


def test_a_dry_run_plan_is_printed_as_planned_legs() -> None:
    lines = printed("allocation", fake_result("allocation", {}, "k", dry_run=True))
    assert lines == [
        "          leg alloc-756733  planned  symbol=SPY  side=BUY  quantity=124.0"
        "  limit_price=598.37",
        "          leg alloc-15547841  planned  symbol=TLT  side=BUY  quantity=532.0"
        "  limit_price=93.25",
    ]


def test_an_allocation_leg_names_the_strategies_it_serves() -> None:
    leg = {"leg_id": "alloc-1", "order_ref": "r", "status": "Filled", "filled": 5.0}
    leg.update(avg_price=93.04999999999998, commission=1.0, strategies={"fixed_weights": 5.0})
    assert printed("allocation", {"legs": [leg]}) == [
        "          leg alloc-1  order_ref=r  status=Filled  filled=5.0  avg_price=93.05"
        '  commission=1.0  strategies={"fixed_weights": 5.0}'
    ]


def test_reconciliation_prints_bookings_blotter_and_differences() -> None:
    assert printed("trade_reconciliation", fake_result("trade_reconciliation", {}, "k")) == [
        "          booked 0 execution(s) to the strategies now",
        "          blotter fixed_weights  SPY (conId 756733)  position=124.0  realized_pnl=0.0"
        "  commission=0.43",
        "          difference SPY (conId 756733)  ours=124.0  broker=234.0  unattributed=110.0",
    ]


def test_close_all_prints_the_orders_it_cancelled() -> None:
    cancel = {"leg_id": "cancel-9", "order_ref": "ibw:x:order", "status": "Cancelled"}
    assert printed("close_all", {"cancelled": [cancel], "legs": []}) == [
        "          cancelled 1 order(s) of ours before flattening",
        "          cancel cancel-9  order_ref=ibw:x:order  status=Cancelled",
    ]


class FakePubSub:
    """Answers each new idempotency key with one outcome, as a conforming worker would.

    Args:
        unfilled: Intents whose order legs stay PreSubmitted.
        silent: Intents that never get an outcome.
    """

    def __init__(self, unfilled: Collection[str] = (), silent: Collection[str] = ()) -> None:
        self.unfilled = set(unfilled)
        self.silent = set(silent)
        self.published: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.pending: list[Outcome] = []

    def publish_raw(self, data: bytes, attributes: dict[str, str]) -> str:
        envelope = json.loads(data)
        key = attributes["idempotency_key"]
        seen = key in {a["idempotency_key"] for _, a in self.published}
        if not seen and envelope["intent"] not in self.silent:
            self.pending.append(self._answer(envelope, attributes))
        self.published.append((envelope, dict(attributes)))
        return str(len(self.published))

    def _answer(self, envelope: dict[str, Any], attributes: dict[str, str]) -> Outcome:
        intent, key = envelope["intent"], attributes["idempotency_key"]
        status = "PreSubmitted" if intent in self.unfilled else "Filled"
        dry_run = attributes.get("dry_run") == "true"
        result = fake_result(intent, envelope["params"], key, dry_run, status)
        kind = "rejected" if result is None else "succeeded"
        got = replace(outcome(key, kind, key), subject=intent)
        return replace(got, data={"idempotency_key": key, "result": result})

    def pull_outcomes(
        self, timeout: float, expected: int, on_outcome: Callable[[Outcome], None]
    ) -> list[Outcome]:
        got, self.pending = self.pending[:expected], self.pending[expected:]
        for o in got:
            on_outcome(o)
        return got


class ConfigStore:
    """Stands in for Firestore's config/common: records what was written, or refuses."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.written: list[Mapping[str, Any]] = []

    def write(self, config: Mapping[str, Any]) -> None:
        if self.refuse:
            raise gexc.ServiceUnavailable("emulator gone")
        self.written.append(config)


def test_run_demo_places_one_order_repeats_both_keys_then_trades() -> None:
    pubsub, store = FakePubSub(), ConfigStore()
    said: list[str] = []
    assert run_demo(pubsub, store.write, said.append, 5, account="DU2") == []
    assert store.written == [TRADING_CONFIG]
    assert said[0].startswith("-> write the trading config to Firestore config/common: {")
    intents = [(e["intent"], a["idempotency_key"].rsplit("-", 1)[1]) for e, a in pubsub.published]
    assert intents == [
        ("summary", "summary"),
        ("place_order", "order"),
        ("summary", "summary"),
        ("place_order", "order"),
        ("no_such_intent", "0"),
        ("summary", "1"),
        ("allocation", "plan"),
        ("allocation", "alloc"),
        ("trade_reconciliation", "recon"),
        ("close_all", "close"),
    ]
    assert pubsub.published[1][0]["params"] == {
        "symbol": "SPY",
        "side": "BUY",
        "quantity": 10,
        "order_type": "MKT",
    }
    assert pubsub.published[3] == pubsub.published[1]  # the same message again
    assert {a["account"] for _, a in pubsub.published} == {"DU2"}
    assert [a.get("dry_run") for _, a in pubsub.published[6:8]] == ["true", None]
    assert pubsub.published[9][0]["params"] == {"symbols": ["TLT"]}
    assert any(line.startswith("-> publish the same place_order again") for line in said)
    assert sum(line.startswith("          leg order ") for line in said) == 1
    assert sum(" planned  symbol=" in line for line in said) == 2
    assert any(line.startswith("          blotter fixed_weights  SPY") for line in said)


def test_run_demo_fails_when_an_order_does_not_fill() -> None:
    problems = run_demo(FakePubSub(unfilled={"place_order"}), ConfigStore().write, _mute, 5)
    assert problems == ["place_order: leg order is PreSubmitted, expected Filled"]
    problems = run_demo(FakePubSub(unfilled={"close_all"}), ConfigStore().write, _mute, 5)
    assert problems == ["close_all TLT: leg close-15547841 is PreSubmitted, expected Filled"]


def test_a_trading_step_without_outcome_ends_the_chain() -> None:
    pubsub = FakePubSub(silent={"trade_reconciliation"})
    problems = run_demo(pubsub, ConfigStore().write, _mute, 0.1)
    assert problems == [
        "trade_reconciliation: no outcome event arrived within 0s",
        "not published: close_all TLT (after trade_reconciliation had no outcome)",
    ]
    assert pubsub.published[-1][0]["intent"] == "trade_reconciliation"


def test_without_the_trading_config_no_trading_intent_is_published() -> None:
    pubsub = FakePubSub()
    problems = run_demo(pubsub, ConfigStore(refuse=True).write, _mute, 5)
    assert problems == ["could not write the trading config: ServiceUnavailable: 503 emulator gone"]
    intents = {e["intent"] for e, _ in pubsub.published}
    assert intents == {"summary", "place_order", "no_such_intent"}


def test_a_dry_run_step_needs_a_plan() -> None:
    plan = Step("plan", "allocation", {}, frozenset({"succeeded"}), dry_run=True)
    empty = replace(outcome("k", "succeeded", "a"), data={"idempotency_key": "k", "result": {}})
    assert check_outcomes({"k": plan}, [empty], 5) == ["plan: the plan lists no legs"]


def _mute(line: str) -> None:
    return None
