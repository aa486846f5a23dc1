"""Real push delivery from the Pub/Sub emulator: the wrapped envelope and the dead-letter policy."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.stack_fixtures import PushReceiver
from worker.devstack.pubsub_setup import LocalPubSub, PushPolicy

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(60)]

GOLDEN = Path(__file__).parents[1] / "data" / "pubsub_push_wrapped.json"
# A real dead-letter push body (the message the push subscription gave up on, republished).
DEAD_LETTER_GOLDEN = Path(__file__).with_name("pubsub_push_dead_letter.json")
# The smallest backoff. Measured on emulator 0.8.20 (CLI 528): it still redelivers a nacked push
# after ~1, 4, 7 and 10 s and dead-letters ~3 s after the fifth nack, whatever the retry policy.
QUICK = PushPolicy(min_backoff_s=0.1, max_backoff_s=0.2)


def _shape(value: Any) -> Any:
    """Replace leaves by their type names, so envelopes compare by structure, not content."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def _wrapped_envelope(pubsub: LocalPubSub, push_receiver: PushReceiver) -> dict[str, Any]:
    pubsub.setup(push_receiver.url, QUICK)
    attrs = {"idempotency_key": "golden-key-1", "account": "DU1234567"}
    pubsub.publish_intent("summary", {"currency": "USD"}, attrs)
    return push_receiver.wait_for(1, timeout=20)[0]["body"]


def test_push_delivers_wrapped_envelope(pubsub: LocalPubSub, push_receiver: PushReceiver) -> None:
    body = _wrapped_envelope(pubsub, push_receiver)
    message = body["message"]
    assert json.loads(base64.b64decode(message["data"])) == {
        "intent": "summary",
        "params": {"currency": "USD"},
    }
    assert message["attributes"] == {"idempotency_key": "golden-key-1", "account": "DU1234567"}
    assert message["messageId"] == message["message_id"]
    assert message["publishTime"] == message["publish_time"]
    assert body["subscription"] == pubsub.names.subscription_path(
        pubsub.names.intents_push_subscription
    )
    # Production adds deliveryAttempt when a dead-letter policy is set; emulator 0.8.20 never
    # sends it on push, so the worker must treat it as optional.
    assert body.get("deliveryAttempt", 1) == 1
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    assert _shape(body) == _shape(json.loads(GOLDEN.read_text()))


def test_dead_letter_after_five_nacks(pubsub: LocalPubSub, push_receiver: PushReceiver) -> None:
    push_receiver.status = 500  # any non-2xx status is a nack
    pubsub.setup(push_receiver.url, QUICK)
    message_id = pubsub.publish_intent("summary", {}, {"idempotency_key": "dlq-1"})
    pushes = push_receiver.wait_for(5, timeout=30)
    assert {p["body"]["message"]["messageId"] for p in pushes} == {message_id}
    dead = pubsub.pull(pubsub.names.dead_letter_subscription, timeout=20, expected=1)
    assert len(dead) == 1
    attributes = dead[0].message.attributes
    assert attributes["idempotency_key"] == "dlq-1"
    assert attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert json.loads(dead[0].message.data)["intent"] == "summary"
    # Dead-lettered means no further delivery to the intents endpoint.
    assert [r["path"] for r in push_receiver.requests].count("/") == 5


def test_dead_letter_is_pushed_to_the_dead_letter_route(
    pubsub: LocalPubSub, push_receiver: PushReceiver
) -> None:
    """What the worker's dead-letter route receives (measured on emulator 0.8.20, CLI 528)."""
    push_receiver.status = 500  # nacks the intent five times, then the dead-letter push too
    pubsub.setup(push_receiver.url, QUICK)
    attrs = {"idempotency_key": "dlq-push-1", "account": "DU1234567"}
    message_id = pubsub.publish_intent("summary", {"currency": "USD"}, attrs)
    requests = push_receiver.wait_for(6, timeout=40)
    assert [r["path"] for r in requests[:6]] == ["/"] * 5 + ["/dead-letters"]
    original, body = requests[0]["body"]["message"], requests[5]["body"]
    message, n = body["message"], pubsub.names
    assert body["subscription"] == n.subscription_path(n.dead_letter_push_subscription)
    assert message["data"] == original["data"]
    # A new message on the dead-letter topic: its own id and publish time. The original id is
    # nowhere in it; the original publish time is an attribute.
    assert message["messageId"] == message["message_id"] != message_id
    assert message["publishTime"] == message["publish_time"] > original["publishTime"]
    assert message["attributes"] == {
        **attrs,
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "CloudPubSubDeadLetterSourceSubscription": n.intents_push_subscription,
        "CloudPubSubDeadLetterSourceSubscriptionProject": n.project,
        "CloudPubSubDeadLetterSourceTopicPublishTime": original["publishTime"],
    }
    assert "deliveryAttempt" not in body  # no dead-letter policy on this subscription
    if os.environ.get("UPDATE_GOLDEN"):
        DEAD_LETTER_GOLDEN.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    assert _shape(body) == _shape(json.loads(DEAD_LETTER_GOLDEN.read_text()))
    # A nacked dead letter is redelivered to the route, never dead-lettered again (no loop).
    again = push_receiver.wait_for(7, timeout=20)[6]
    assert again["path"] == "/dead-letters"
    assert again["body"]["message"]["messageId"] == message["messageId"]
    assert len(pubsub.pull(n.dead_letter_subscription, timeout=3, expected=2)) == 1


def test_a_pull_with_almost_no_time_left_is_empty_not_an_error(
    pubsub: LocalPubSub, push_receiver: PushReceiver
) -> None:
    # CI once died on a pull sent with 1.4 ms left: gRPC cut the stream (CANCELLED).
    pubsub.setup(push_receiver.url, QUICK)
    for timeout in (1e-6, 1e-4, 1.4e-3, 0.01):
        assert pubsub.pull_outcomes(timeout=timeout, expected=1) == []
