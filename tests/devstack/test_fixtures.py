"""The stack fixtures themselves, driving a stand-in worker through real push delivery.

This is also the template for the worker's end-to-end tests: swap the stand-in app for the real
one (the worker_server defaults) and ibsim comes from the ibsim_server fixture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.stack_fixtures import PushReceiver
from worker.devstack.emulators import Emulators
from worker.devstack.processes import group_members, http_status
from worker.devstack.pubsub_setup import LocalPubSub

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(60)]

HERE = Path(__file__).parent
STANDIN = {"app": "standins:create_fake_worker()", "config": None}


@pytest.fixture
def standin_path() -> str:
    return os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])


def test_worker_server_wires_the_test_resources(
    worker_server, pubsub: LocalPubSub, emulators: Emulators, standin_path: str
) -> None:
    worker = worker_server(**STANDIN, IB_PORT="4002", PYTHONPATH=standin_path)
    assert http_status(worker.url + "/healthz") == 200
    assert worker.env["RESULTS_TOPIC"] == pubsub.names.results_topic
    assert worker.env["PUBSUB_EMULATOR_HOST"] == emulators.pubsub_host
    assert worker.env["FIRESTORE_EMULATOR_HOST"] == emulators.firestore_host
    assert (worker.env["IB_PORT"], worker.env["TRADING_MODE"]) == ("4002", "paper")


def test_push_to_worker_and_read_outcome(
    worker_server, pubsub: LocalPubSub, standin_path: str
) -> None:
    worker = worker_server(**STANDIN, IB_PORT="4002", PYTHONPATH=standin_path)
    pubsub.setup(worker.url + "/")
    pubsub.publish_intent("summary", {}, {"idempotency_key": "k-1"})
    (outcome,) = pubsub.pull_outcomes(timeout=20, expected=1)
    assert (outcome.kind, outcome.subject, outcome.id) == ("succeeded", "summary", "id-k-1")


def test_worker_server_is_stopped_after_the_test(worker_server, standin_path: str) -> None:
    worker = worker_server(**STANDIN, IB_PORT="4002", PYTHONPATH=standin_path)
    worker.process.stop(grace=5)
    assert group_members(worker.process.pid) == []


def test_clean_firestore_and_push_receiver_fixtures(
    clean_firestore: Emulators, push_receiver: PushReceiver, pubsub: LocalPubSub
) -> None:
    pubsub.setup(push_receiver.url)
    pubsub.publish_raw(b"not json", {"a": "b"})
    (request,) = push_receiver.wait_for(1, timeout=20)
    assert request["body"]["message"]["attributes"] == {"a": "b"}


def test_ibsim_server_fixture(ibsim_server) -> None:
    # Skipped until ibsim provides run_in_thread.
    assert ibsim_server.port > 0
    assert ibsim_server.host
