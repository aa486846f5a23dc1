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
    # Dead-lettered means no further delivery to the push endpoint.
    assert len(push_receiver.requests) == 5
