"""The run lifecycle in-process: one test per defect of the lifecycle issue, each driving the
real Pipeline through Flask's test client on the emulators and ibsim."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes.tcp_proxy import TcpProxy
from tests.worker.conftest import ACCOUNT
from tests.worker.pushes import JSON, push_body
from worker.errors import GatewayNotReady
from worker.intents import REGISTRY
from worker.runs import RUNNING, now

pytestmark = pytest.mark.emulators


def _fails_once(calls: list[int]) -> Any:
    """A test intent that fails retryably on its first run (the gateway vanished)."""

    def run(ctx: Any, params: Any) -> dict[str, Any]:
        calls.append(ctx.attempt)
        if len(calls) == 1:
            raise GatewayNotReady("gateway went away mid-run")
        return {"ran": len(calls)}

    return run


def _expire(stack: Any, key: str) -> None:
    """Let a released or abandoned lease be in the past for certain."""
    ref = stack.firestore.collection("intent_runs").document(stack.pipeline.runs.doc_id(key))
    ref.update({"lease_expires_at": now() - timedelta(seconds=1)})


# -- 1. a redelivery of an abandoned RUNNING record that is now permanently refused ----------
@pytest.mark.parametrize("refusal", ["not_after", "kill_switch", "intent_removed"])
def test_refused_redelivery_finishes_the_abandoned_record(
    inproc, test_intent, monkeypatch, refusal
) -> None:
    stack = inproc()
    calls: list[int] = []
    test_intent("flaky", _fails_once(calls), places_orders=refusal == "kill_switch")
    attrs = {"idempotency_key": "k1", "account": ACCOUNT}
    if refusal == "not_after":
        attrs["not_after"] = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    first = stack.push("flaky", message_id="m1", **attrs)
    assert first.status_code == 503
    assert stack.record("k1")["state"] == RUNNING
    _expire(stack, "k1")
    if refusal == "not_after":
        time.sleep(1.1)
    elif refusal == "kill_switch":
        stack.firestore.collection("config").document("common").set({"tradingEnabled": False})
    else:
        monkeypatch.delitem(REGISTRY, "flaky")
    again = stack.push("flaky", message_id="m1", **attrs)
    assert again.status_code == 200, again.json
    expected = {"not_after": "SKIPPED", "kill_switch": "REJECTED", "intent_removed": "REJECTED"}
    assert stack.record("k1")["state"] == expected[refusal]
    [outcome] = stack.outcomes(1)
    assert outcome.data["attempt"] == 1
    assert stack.push("flaky", message_id="m1", **attrs).json["replayed"] is True
    assert stack.outcomes(0, timeout=0.5) == []
    assert calls == [1], "the refused redelivery never ran the intent"


# -- 2. text no store accepts ---------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b'{"intent": "summary", "params": {"tags": ["\\ud800"]}}',
        b'{"intent": "\\ud800summary", "params": {}}',
    ],
)
def test_lone_surrogates_are_refused_at_the_edge(inproc, raw) -> None:
    stack = inproc()
    for _ in range(2):
        reply = stack.post_raw("/", push_body(raw, "sur-1"))
        assert reply.status_code == 200, reply.json
    assert stack.record("sur-1")["state"] == "REJECTED"
    [outcome] = stack.outcomes(1)
    assert outcome.data["error"]["code"] == "bad_input"


def test_surrogate_key_attribute_is_refused(inproc) -> None:
    stack = inproc()
    body = push_body({"intent": "summary"}, "sur-2", {"idempotency_key": "\ud800"})
    assert stack.post_raw("/", body).status_code == 200
    [outcome] = stack.outcomes(1)
    assert outcome.kind == "rejected"
    assert stack.record("sur-2")["state"] == "REJECTED"


def test_a_result_firestore_refuses_finishes_as_failed(inproc, test_intent) -> None:
    stack = inproc()
    calls: list[int] = []

    def bad_result(ctx: Any, params: Any) -> dict[str, Any]:
        calls.append(1)
        return {"text": "\ud800", "big": "x" * 1_100_000}

    test_intent("bad_result", bad_result)
    reply = stack.push("bad_result", message_id="br-1")
    assert reply.status_code == 200, reply.json
    record = stack.record("br-1")
    assert record["state"] == "FAILED"
    assert record["lease_expires_at"] is None
    [outcome] = stack.outcomes(1)
    assert "could not be stored" in outcome.data["error"]["message"]
    assert stack.push("bad_result", message_id="br-1").json["replayed"] is True
    assert calls == [1]


# -- 3. finishing fails after the run: the next attempt finishes, it does not run again -------
def test_a_failed_finish_is_finished_by_the_retry_without_running_again(
    inproc, test_intent, emulators
) -> None:
    with TcpProxy(_address(emulators.firestore_host)) as proxy:
        stack = inproc(firestore_host=proxy.address, retry_timeout=1.0)
        calls: list[int] = []

        def cut_at_the_end(ctx: Any, params: Any) -> dict[str, Any]:
            calls.append(ctx.attempt)
            proxy.cut()  # Firestore goes away after the intent did its work
            return {"ran": len(calls)}

        test_intent("cut_end", cut_at_the_end)
        first = stack.push("cut_end", message_id="f-1")
        assert first.status_code == 503
        assert first.json["error"]["code"] == "store_unavailable"
        proxy.restore()
        deadline = time.monotonic() + 10
        while (again := stack.push("cut_end", message_id="f-1")).status_code != 200:
            assert time.monotonic() < deadline, again.json
            time.sleep(0.2)
        assert stack.record("f-1")["state"] == "SUCCEEDED"
    assert calls == [1], "the intent ran again"
    [outcome] = stack.outcomes(1)
    assert outcome.kind == "succeeded"
    assert outcome.data["result"] == {"ran": 1}


# -- 4. losing the lease cancels the run ------------------------------------------------------
def test_a_run_whose_lease_is_taken_over_stops_and_publishes_nothing(inproc) -> None:
    stack = inproc(LEASE_SECONDS="6")
    stack.sim.faults.withhold_end("execDetailsEnd")  # the summary waits on IB...
    replies: list[Any] = []
    worker = threading.Thread(
        target=lambda: replies.append(stack.push("summary", message_id="lease-1"))
    )
    worker.start()
    ref = stack.firestore.collection("intent_runs").document(stack.pipeline.runs.doc_id("lease-1"))
    _wait(lambda: (ref.get().to_dict() or {}).get("state") == RUNNING)
    # ...while another delivery takes the key over (as after a freeze past the lease).
    ref.update({"holder": "someone-else", "attempt": 2})
    worker.join(10)
    assert not worker.is_alive(), "the superseded run kept waiting on IB"
    [reply] = replies
    assert reply.status_code == 429
    assert reply.json["error"]["code"] == "superseded"
    record = ref.get().to_dict()
    assert (record["state"], record["holder"]) == (RUNNING, "someone-else")
    assert record["outcome"] is None
    assert stack.outcomes(0, timeout=1.0) == []
    stack.sim.faults.release_ends()


# -- 5. dead letters get an outcome ---------------------------------------------------------
def _dead_letter(
    stack: Any, message_id: str, key: str, intent: str = "summary", count: int = 5
) -> Any:
    attributes = {"idempotency_key": key, "CloudPubSubDeadLetterSourceDeliveryCount": str(count)}
    body = push_body({"intent": intent}, message_id, attributes)
    return stack.post_raw("/dead-letters", body)


def test_a_dead_letter_without_outcome_gets_a_failed_one(inproc) -> None:
    stack = inproc()
    reply = _dead_letter(stack, "dl-1", "never-ran")
    assert reply.status_code == 200, reply.json
    [outcome] = stack.outcomes(1)
    assert outcome.kind == "failed"
    assert outcome.data["error"]["code"] == "dead_lettered"
    assert outcome.data["error"]["details"] == {"delivery_attempts": 5}
    assert stack.record("never-ran")["state"] == "FAILED"
    assert _dead_letter(stack, "dl-1", "never-ran").json["replayed"] is True
    assert stack.outcomes(0, timeout=0.5) == []


def test_a_dead_letter_finishes_an_abandoned_run(inproc, test_intent) -> None:
    stack = inproc()
    test_intent("flaky", _fails_once([]))
    assert stack.push("flaky", message_id="m", idempotency_key="stuck").status_code == 503
    _expire(stack, "stuck")
    body = push_body(
        {"intent": "flaky"},
        "dl-2",
        {"idempotency_key": "stuck", "CloudPubSubDeadLetterSourceDeliveryCount": "7"},
    )
    assert stack.post_raw("/dead-letters", body).status_code == 200
    [outcome] = stack.outcomes(1)
    assert outcome.data["error"]["code"] == "dead_lettered"
    assert stack.record("stuck")["state"] == "FAILED"


def test_a_dead_letter_finds_a_run_keyed_by_its_original_message_id(inproc, test_intent) -> None:
    stack = inproc()
    test_intent("flaky", _fails_once([]))
    assert stack.push("flaky", message_id="orig-7").status_code == 503  # keyed by "orig-7"
    _expire(stack, "orig-7")
    # Pub/Sub republishes a dead letter as a new message: new id, the original's publish time
    # in an attribute (push_body's publishTime is the original's).
    attributes = {
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "CloudPubSubDeadLetterSourceTopicPublishTime": "2026-11-24T15:00:00Z",
    }
    body = push_body({"intent": "flaky"}, "dl-new-id", attributes)
    body = body.replace(b"2026-11-24T15:00:00Z", b"2026-11-24T15:09:59Z", 1)
    assert stack.post_raw("/dead-letters", body).status_code == 200
    assert stack.record("orig-7")["state"] == "FAILED"
    [outcome] = stack.outcomes(1)
    assert outcome.id == stack.pipeline.runs.doc_id("orig-7")


def test_a_dead_letter_of_a_finished_key_publishes_nothing_new(inproc) -> None:
    stack = inproc()
    assert stack.push("summary", message_id="m", idempotency_key="done").status_code == 200
    [first] = stack.outcomes(1)
    reply = _dead_letter(stack, "dl-3", "done")
    assert reply.status_code == 200
    assert reply.json["replayed"] is True
    assert stack.outcomes(0, timeout=0.5) == []
    assert first.kind == "succeeded"


def test_a_dead_letter_of_a_live_run_waits(inproc, test_intent) -> None:
    stack = inproc()
    started, release = threading.Event(), threading.Event()

    def slow(ctx: Any, params: Any) -> dict[str, Any]:
        started.set()
        release.wait(10)
        return {}

    test_intent("slow", slow)
    runner = threading.Thread(
        target=lambda: stack.push("slow", message_id="m", idempotency_key="live")
    )
    runner.start()
    started.wait(10)
    try:
        assert _dead_letter(stack, "dl-4", "live", intent="slow").status_code == 429
    finally:
        release.set()
        runner.join(10)
    assert stack.record("live")["state"] == "SUCCEEDED"


# -- 6. direct calls without a key are answered alone ----------------------------------------
def test_bad_direct_calls_without_key_are_answered_each_for_itself(inproc) -> None:
    stack = inproc()
    bad = b'{"not json'
    first = stack.client.post("/intents/summary", data=bad, headers=JSON)
    second = stack.client.post("/intents/summary", data=bad, headers=JSON)
    assert (first.status_code, second.status_code) == (400, 400)
    assert first.json["replayed"] is False
    assert second.json["replayed"] is False
    assert first.json["key"] != second.json["key"]
    invalid = {"sections": ["nope"]}
    replies = [stack.client.post("/intents/summary", json=invalid) for _ in range(2)]
    assert [r.status_code for r in replies] == [422, 422]
    assert [r.json["replayed"] for r in replies] == [False, False]


# -- 7. summary for every account of a login ------------------------------------------------
def test_summary_of_each_account_of_a_two_account_login(inproc) -> None:
    stack = inproc(scenario="two_accounts")
    portfolios = {}
    for n, account in enumerate(["DU2222222", "DU1111111", "DU2222222"]):
        reply = stack.client.post(
            "/intents/summary",
            json={"sections": ["portfolio", "values"]},
            headers={"Account": account, "Idempotency-Key": f"two-{n}"},
        )
        assert reply.status_code == 200, reply.json
        result = reply.json["result"]
        portfolios[n] = {p["symbol"]: p["position"] for p in result["portfolio"]}
        assert float(result["values"]["NetLiquidation"]["USD"]) > 0
    assert portfolios[0] == {"QQQ": -30}
    assert portfolios[1] == {"SPY": 50}
    assert portfolios[2] == {"QQQ": -30}


# -- 8. status() reads a snapshot, never the IB library from a request thread ----------------
class _LoopOnly:
    """Our Gateway, refusing use from any thread but the session's (its contract)."""

    def __init__(self, gateway: Any, thread: threading.Thread) -> None:
        self._gateway, self._thread = gateway, thread

    def __getattr__(self, name: str) -> Any:
        if threading.current_thread() is not self._thread:
            raise AssertionError(f"Gateway.{name} used from {threading.current_thread().name}")
        return getattr(self._gateway, name)


def test_status_never_touches_the_library_off_the_session_thread(inproc) -> None:
    stack = inproc()
    session = stack.pipeline.broker
    session._gateway = _LoopOnly(session._gateway, session._thread)
    reply = stack.client.get("/readyz")
    assert reply.status_code == 200
    assert reply.json["accounts"] == [ACCOUNT]
    assert reply.json["server_version"] >= 176
    assert stack.push("summary", message_id="st-1").status_code == 200


def _wait(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


def _address(host_port: str) -> tuple[str, int]:
    host, port = host_port.rsplit(":", 1)
    return host, int(port)
