"""SIGTERM to gunicorn while an intent waits on IB: the run is handed back, not lost."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from tests.worker.pushes import push_body
from worker.envelope import digest
from worker.runs import now

pytestmark = pytest.mark.emulators


def test_sigterm_hands_back_a_running_intent(
    worker_server, ibsim_server, clean_firestore, emulator_env, pubsub
) -> None:
    pubsub.create_topic(pubsub.names.results_topic)
    worker = worker_server(GRACEFUL_TIMEOUT="4", wait_ready=True)
    ibsim_server.faults.withhold_end("execDetailsEnd")  # the run will wait on IB
    body = push_body({"intent": "summary"}, "g-1")
    replies: list[requests.Response] = []
    sender = threading.Thread(
        target=lambda: replies.append(
            requests.post(
                worker.url + "/",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
        )
    )
    sender.start()

    doc = emulator_env.firestore_client()
    ref = doc.collection("intent_runs").document(digest("ib-paper", "g-1"))
    deadline = time.monotonic() + 15
    while (ref.get().to_dict() or {}).get("state") != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    stopped_at = time.monotonic()
    os.kill(worker.process.pid, signal.SIGTERM)
    sender.join(15)
    assert replies, "the running request got no answer"
    assert replies[0].status_code == 503
    assert replies[0].json()["error"]["retryable"] is True
    record = ref.get().to_dict()
    assert record["state"] == "RUNNING"
    assert record["lease_expires_at"] <= now(), "the lease was handed back"
    deadline = time.monotonic() + 10
    while worker.process.running():
        assert time.monotonic() < deadline, "gunicorn did not exit"
        time.sleep(0.05)
    assert time.monotonic() - stopped_at < 6
