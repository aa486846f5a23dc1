"""Hostile and malformed input against the real app under gunicorn, with the real emulators.

No gateway is needed: every case is decided before an intent runs. Each answer must be an ack
(2xx) with exactly one rejected outcome on the results topic, never a 5xx.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.worker.pushes import JSON, push_body
from worker.devstack.processes import free_port

pytestmark = pytest.mark.emulators


@pytest.fixture
def worker(worker_server, pubsub):
    pubsub.create_topic(pubsub.names.results_topic)
    pubsub.create_pull_subscription(pubsub.names.results_subscription, pubsub.names.results_topic)
    # A closed port: the IB session never becomes ready, which these cases must not need.
    return worker_server(IB_PORT=str(free_port()), MAX_BODY_BYTES="65536")


CASES = {
    "not json": (JSON, b"{nope"),
    "bad base64": (JSON, b'{"message": {"data": "%%%", "messageId": "m-b64"}}'),
    "missing message": (JSON, b'{"subscription": "s"}'),
    "unknown intent": (JSON, push_body(b'{"intent": "nope"}', "m-unknown")),
    "wrong types": (JSON, push_body(b'{"intent": "summary", "params": {"sections": 5}}', "m-t")),
    "missing intent": (JSON, push_body(b'{"params": {}}', "m-missing")),
    "wrong content type": ({"Content-Type": "text/csv"}, b"a,b"),
    "oversized body": (JSON, b'{"pad": "' + b"x" * 200_000 + b'"}'),
    "invalid utf-8": (JSON, b'{"message": "\xff"}'),
    "deep nesting": (JSON, b"[" * 50_000 + b"]" * 50_000),
    "key with slashes and huge params": (
        JSON,
        push_body(
            json.dumps({"intent": "summary", "params": {"x": "y" * 40_000}}).encode(),
            "m-huge",
            {"idempotency_key": "../../etc/passwd"},
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_push_is_acked_with_one_rejected_outcome(worker, pubsub, name) -> None:
    headers, body = CASES[name]
    first = requests.post(worker.url + "/", data=body, headers=headers, timeout=30)
    again = requests.post(worker.url + "/", data=body, headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert first.json()["outcome"] == "rejected"
    outcomes = pubsub.pull_outcomes(timeout=10, expected=1)
    assert [o.kind for o in outcomes] == ["rejected"]
    assert pubsub.pull_outcomes(timeout=1, expected=1) == [], "a replay must not publish again"
    error = outcomes[0].data["error"]
    assert error["retryable"] is False
    assert error["code"] in {
        "bad_input",
        "unknown_intent",
        "invalid_params",
    }


def test_direct_calls_get_http_status_codes(worker) -> None:
    url = worker.url + "/intents/"
    assert requests.post(url + "nope", json={}, timeout=30).status_code == 404
    assert requests.post(url + "summary", json={"sections": "x"}, timeout=30).status_code == 422
    bad = requests.post(url + "summary", data=b"{", headers=JSON, timeout=30)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_input"


def test_valid_intent_without_gateway_is_retried_not_acked(worker, pubsub) -> None:
    body = push_body(b'{"intent": "summary"}', "m-retry")
    response = requests.post(worker.url + "/", data=body, headers=JSON, timeout=30)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "gateway_not_ready"
    assert pubsub.pull_outcomes(timeout=2, expected=1) == []


def test_health_and_readiness(worker) -> None:
    assert requests.get(worker.url + "/healthz", timeout=5).status_code == 200
    ready = requests.get(worker.url + "/readyz", timeout=5)
    assert ready.status_code == 503
    assert ready.json()["ready"] is False
    schemas = requests.get(worker.url + "/intents", timeout=5).json()
    assert "summary" in schemas
    assert schemas["summary"]["params_schema"]["type"] == "object"
