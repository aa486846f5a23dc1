"""The deployment's Pub/Sub layout on the emulator, for the soak.

The same topics and subscriptions as ``LocalPubSub.setup`` (worker/devstack/pubsub_setup.py),
but push subscriptions without a retry policy, because of how the emulator redelivers (below).
"""

from __future__ import annotations

from typing import Any

from google.pubsub_v1.types import DeadLetterPolicy

from worker.devstack.pubsub_setup import LocalPubSub, dead_letter_endpoint

# No retry policy on the push subscriptions: measured on the emulator of CLI 528, with ANY
# retry_policy (0.1-0.2 s, 1-5 s, 1-10 s) several messages nacked together are redelivered twice
# more and then never again; without one it redelivers a nacked push about every second. 100
# attempts (about 100 s of nacks) before a dead letter: no fault here lasts that long.
MAX_DELIVERY_ATTEMPTS = 100
ACK_DEADLINE_S = 600


def setup_pubsub(pubsub: LocalPubSub, endpoint: str) -> None:
    """The deployment's layout (as ``LocalPubSub.setup``), push subscriptions without a retry
    policy (see MAX_DELIVERY_ATTEMPTS): intents pushed to ``endpoint``, dead letters kept in a
    pull subscription and pushed to the worker's dead-letter route."""
    n = pubsub.names
    for topic in (n.intents_topic, n.dead_letter_topic, n.results_topic):
        pubsub.create_topic(topic)
    pubsub.create_pull_subscription(n.dead_letter_subscription, n.dead_letter_topic)
    pubsub.create_pull_subscription(n.results_subscription, n.results_topic)
    dead_letters = dead_letter_endpoint(endpoint)
    _push_subscription(pubsub, n.dead_letter_push_subscription, n.dead_letter_topic, dead_letters)
    policy = DeadLetterPolicy(
        dead_letter_topic=n.topic_path(n.dead_letter_topic),
        max_delivery_attempts=MAX_DELIVERY_ATTEMPTS,
    )
    _push_subscription(pubsub, n.intents_push_subscription, n.intents_topic, endpoint, policy)


def _push_subscription(
    pubsub: LocalPubSub,
    name: str,
    topic: str,
    endpoint: str,
    dead_letters: DeadLetterPolicy | None = None,
) -> None:
    n = pubsub.names
    request: dict[str, Any] = {
        "name": n.subscription_path(name),
        "topic": n.topic_path(topic),
        "push_config": {"push_endpoint": endpoint},
        "ack_deadline_seconds": ACK_DEADLINE_S,
    }
    if dead_letters is not None:
        request["dead_letter_policy"] = dead_letters
    pubsub.subscriber.create_subscription(request=request)
