"""Pub/Sub layout from names.json, intent publishing and outcome reading on the emulator."""

from __future__ import annotations

import json

import pytest
from google.api_core import exceptions as gexc

from worker.devstack.pubsub_setup import LocalPubSub, Outcome, PubSubNames, describe_outcome
from worker.names import names

pytestmark = pytest.mark.timeout(60)


def test_names_come_from_names_json() -> None:
    section = names()["pubsub"]
    n = PubSubNames.from_names_file("p1", "paper", "-x")
    assert n.intents_topic == section["intents_topic"].format(mode="paper") + "-x"
    assert n.intents_topic == "ib-paper-intents-x"
    assert n.dead_letter_topic == "ib-paper-intents-dead-letter-x"
    assert n.results_topic == section["results_topic"] + "-x"
    assert n.topic_path(n.results_topic) == "projects/p1/topics/ib-intent-results-x"
    assert n.dead_letter_push_subscription == "ib-paper-intents-dead-letter-push-x"


@pytest.mark.emulators
def test_setup_creates_the_deployment_layout(pubsub: LocalPubSub) -> None:
    pubsub.setup("http://127.0.0.1:9/")
    n = pubsub.names
    push = pubsub.subscriber.get_subscription(
        subscription=n.subscription_path(n.intents_push_subscription)
    )
    assert push.push_config.push_endpoint == "http://127.0.0.1:9/"
    assert not push.push_config.no_wrapper.write_metadata  # wrapped envelope
    assert push.ack_deadline_seconds == 600
    assert push.dead_letter_policy.dead_letter_topic == n.topic_path(n.dead_letter_topic)
    assert push.dead_letter_policy.max_delivery_attempts == 5
    assert push.retry_policy.minimum_backoff.total_seconds() == 1
    assert push.retry_policy.maximum_backoff.total_seconds() == 10
    dead = pubsub.subscriber.get_subscription(
        subscription=n.subscription_path(n.dead_letter_push_subscription)
    )
    assert dead.topic == n.topic_path(n.dead_letter_topic)
    assert dead.push_config.push_endpoint == "http://127.0.0.1:9/dead-letters"
    assert not dead.push_config.no_wrapper.write_metadata
    assert dead.ack_deadline_seconds == 60
    assert not dead.dead_letter_policy.dead_letter_topic  # its own topic would be a loop
    assert dead.retry_policy.maximum_backoff.total_seconds() == 10
    for sub, topic in (
        (n.dead_letter_subscription, n.dead_letter_topic),
        (n.results_subscription, n.results_topic),
    ):
        pull = pubsub.subscriber.get_subscription(subscription=n.subscription_path(sub))
        assert pull.topic == n.topic_path(topic)
        assert not pull.push_config.push_endpoint
    pubsub.setup("http://127.0.0.1:9/")  # idempotent: existing resources are fine


@pytest.mark.emulators
def test_delete_created_removes_resources(pubsub: LocalPubSub) -> None:
    pubsub.setup("http://127.0.0.1:9/")
    pubsub.delete_created()
    with pytest.raises(gexc.NotFound):
        pubsub.publisher.get_topic(topic=pubsub.names.topic_path(pubsub.names.intents_topic))


@pytest.mark.emulators
def test_pull_outcomes_decodes_binary_cloudevents(pubsub: LocalPubSub) -> None:
    pubsub.setup("http://127.0.0.1:9/")
    ce = {
        "ce-id": "abc123",
        "ce-type": "io.github.ibcloudrun.intent.failed",
        "ce-source": "//ib-cloudrun/projects/p/deployments/ib-paper",
        "ce-subject": "summary",
        "ce-time": "2026-01-02T03:04:05Z",
        "ce-specversion": "1.0",
        "trading_mode": "paper",
    }
    data = {
        "intent": "summary",
        "error": {"code": "validation", "message": "bad", "retryable": False},
        "trading_mode": "paper",
    }
    pubsub.publish_raw(json.dumps(data).encode(), ce, topic=pubsub.names.results_topic)
    seen: list[Outcome] = []
    outcomes = pubsub.pull_outcomes(timeout=20, expected=1, on_outcome=seen.append)
    assert outcomes == seen
    (o,) = outcomes
    assert (o.id, o.kind, o.subject, o.data) == ("abc123", "failed", "summary", data)
    text = describe_outcome(o)
    assert "FAILED" in text
    assert "id=abc123" in text
    assert "error validation: bad" in text


@pytest.mark.emulators
def test_pull_outcomes_returns_what_arrived_by_the_timeout(pubsub: LocalPubSub) -> None:
    pubsub.setup("http://127.0.0.1:9/")
    assert pubsub.pull_outcomes(timeout=0.5, expected=1) == []
