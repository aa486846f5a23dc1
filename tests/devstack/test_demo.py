"""The demo's verdict on a list of outcome events (pure; no processes)."""

from __future__ import annotations

from worker.devstack.demo import PERMANENT_FAILURE, Step, check_outcomes
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
