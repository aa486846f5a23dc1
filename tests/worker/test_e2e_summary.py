"""The summary intent end to end: Pub/Sub emulator push -> gunicorn -> Firestore emulator ->
ibsim (real TWS protocol) -> outcome CloudEvent on the results topic. Nothing is mocked."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.worker.pushes import push_body
from worker.devstack.pubsub_setup import PushPolicy
from worker.envelope import digest

pytestmark = pytest.mark.emulators
ACCOUNT = "DU1234567"


@pytest.fixture
def stack(worker_server, pubsub, ibsim_server, clean_firestore, emulator_env):
    worker = worker_server(IB_CONNECT_TIMEOUT="3", wait_ready=True)
    pubsub.setup(worker.url + "/", PushPolicy(min_backoff_s=0.5, max_backoff_s=2.0))
    return worker


def record(emulators, key: str) -> dict | None:
    client = emulators.firestore_client()
    snap = client.collection("intent_runs").document(digest("ib-paper", key)).get()
    return snap.to_dict()


def test_summary_through_pubsub_push(stack, pubsub) -> None:
    message_id = pubsub.publish_intent("summary", {}, {"account": ACCOUNT})
    [outcome] = pubsub.pull_outcomes(timeout=30, expected=1)
    assert outcome.kind == "succeeded", outcome.data
    assert outcome.subject == "summary"
    assert outcome.ordering_key == ACCOUNT
    assert outcome.id == digest("ib-paper", message_id)
    assert outcome.attributes["trading_mode"] == "paper"
    assert outcome.attributes["ce-tradingmode"] == "paper"
    result = outcome.data["result"]
    assert float(result["values"]["NetLiquidation"]["USD"]) > 0
    assert {p["symbol"] for p in result["portfolio"]} >= {"SPY"}
    assert outcome.data["gateway"]["server_version"] >= 176
    assert outcome.data["delivery"]["route"] == "push"


def test_twenty_sequential_copies_run_once(stack, pubsub, emulators) -> None:
    body = push_body({"intent": "summary"}, "seq-1")
    replies = [
        requests.post(
            stack.url + "/", data=body, timeout=30, headers={"Content-Type": "application/json"}
        )
        for _ in range(20)
    ]
    assert [r.status_code for r in replies] == [200] * 20
    assert [r.json()["replayed"] for r in replies] == [False] + [True] * 19
    assert len({r.json()["id"] for r in replies}) == 1
    assert len(pubsub.pull_outcomes(timeout=10, expected=1)) == 1
    assert pubsub.pull_outcomes(timeout=1, expected=1) == []
    assert record(emulators, "seq-1")["attempt"] == 1


def test_twenty_concurrent_copies_run_once(stack, pubsub, emulators) -> None:
    body = push_body({"intent": "summary"}, "conc-1")
    start = threading.Barrier(20)

    def deliver(_: int) -> requests.Response:
        start.wait()
        while True:  # what Pub/Sub does with a 429/503: deliver again
            reply = requests.post(
                stack.url + "/", data=body, timeout=30, headers={"Content-Type": "application/json"}
            )
            if reply.status_code == 200:
                return reply
            assert reply.status_code == 429, reply.text
            time.sleep(0.1)

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(deliver, range(20)))
    assert sum(not r.json()["replayed"] for r in replies) == 1
    assert len({r.json()["id"] for r in replies}) == 1
    assert len(pubsub.pull_outcomes(timeout=10, expected=1)) == 1
    assert pubsub.pull_outcomes(timeout=1, expected=1) == []
    assert record(emulators, "conc-1")["attempt"] == 1


def test_twenty_copies_through_pubsub_yield_one_outcome(stack, pubsub) -> None:
    for _ in range(20):
        pubsub.publish_intent("summary", {}, {"idempotency_key": "twenty"})
    outcomes = pubsub.pull_outcomes(timeout=30, expected=1)
    outcomes += pubsub.pull_outcomes(timeout=3, expected=1)
    assert [o.kind for o in outcomes] == ["succeeded"]


def test_key_reused_with_other_params_is_refused(stack, pubsub) -> None:
    pubsub.publish_intent("summary", {}, {"idempotency_key": "reuse"})
    [first] = pubsub.pull_outcomes(timeout=30, expected=1)
    pubsub.publish_intent("summary", {"sections": ["fills"]}, {"idempotency_key": "reuse"})
    [second] = pubsub.pull_outcomes(timeout=30, expected=1)
    assert (first.kind, second.kind) == ("succeeded", "rejected")
    assert second.data["error"]["code"] == "idempotency_key_reused"
    assert second.id != first.id


def test_not_after_in_the_past_is_skipped(stack, pubsub) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    pubsub.publish_intent("summary", {}, {"not_after": past})
    [outcome] = pubsub.pull_outcomes(timeout=30, expected=1)
    assert outcome.kind == "skipped"


def test_account_not_served_is_acked_without_a_trace(stack, pubsub, emulators) -> None:
    message_id = pubsub.publish_intent("summary", {}, {"account": "DU0000001"})
    assert pubsub.pull_outcomes(timeout=3, expected=1) == []
    assert record(emulators, message_id) is None
    assert pubsub.pull(pubsub.names.dead_letter_subscription, timeout=1, expected=1) == []


def test_direct_call_returns_the_result(stack) -> None:
    reply = requests.post(
        stack.url + "/intents/summary",
        json={"sections": ["values"]},
        headers={"Idempotency-Key": "direct-1"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert "NetLiquidation" in reply.json()["result"]["values"]
    again = requests.post(
        stack.url + "/intents/summary",
        json={"sections": ["values"]},
        headers={"Idempotency-Key": "direct-1"},
        timeout=30,
    )
    assert again.json()["replayed"] is True
    assert again.json()["id"] == reply.json()["id"]
    other = requests.post(
        stack.url + "/intents/summary",
        json={"sections": ["fills"]},
        headers={"Idempotency-Key": "direct-1"},
        timeout=30,
    )
    assert other.status_code == 422


def test_gateway_stopping_mid_run_is_retried_then_succeeds(
    stack, pubsub, ibsim_server, emulators
) -> None:
    faults = ibsim_server.faults
    faults.withhold_end("execDetailsEnd")  # the run hangs in reqExecutions...
    message_id = pubsub.publish_intent("summary", {}, {"account": ACCOUNT})
    deadline = time.monotonic() + 20
    while (record(emulators, message_id) or {}).get("state") != "RUNNING":
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)
    time.sleep(0.3)
    faults.set_not_logged_in(True)  # ...the gateway goes away and stays away a while
    faults.drop_all()
    time.sleep(1.5)
    faults.release_ends()
    faults.set_not_logged_in(False)
    [outcome] = pubsub.pull_outcomes(timeout=60, expected=1)
    assert outcome.kind == "succeeded"
    assert outcome.data["attempt"] >= 2
    assert pubsub.pull_outcomes(timeout=2, expected=1) == []


def test_eventarc_binary_cloudevent_through_gunicorn(stack, pubsub) -> None:
    headers = {
        "ce-id": "ea-1",
        "ce-specversion": "1.0",
        "ce-time": "2026-11-24T15:00:00Z",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "Content-Type": "application/json",
    }
    body = push_body({"intent": "summary", "params": {"sections": ["values"]}}, "ea-1")
    reply = requests.post(stack.url + "/", data=body, headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    [outcome] = pubsub.pull_outcomes(timeout=10, expected=1)
    assert outcome.data["delivery"]["route"] == "eventarc"
    assert outcome.kind == "succeeded"


def test_unwrapped_push_keeps_hyphenated_attributes_through_gunicorn(stack, pubsub) -> None:
    headers = {
        "X-Goog-Pubsub-Message-Id": "uw-1",
        "Content-Type": "application/json",
        "X-Goog-Pubsub-Publish-Time": "2026-11-24T15:00:00Z",
        "Idempotency-Key": "uw-key",
        "Account": ACCOUNT,
        "idempotency_key": "dropped-by-gunicorn",
    }
    reply = requests.post(
        stack.url + "/", data=b'{"intent": "summary"}', headers=headers, timeout=30
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["key"] == "uw-key"
    [outcome] = pubsub.pull_outcomes(timeout=10, expected=1)
    assert outcome.data["delivery"]["route"] == "push-unwrapped"
