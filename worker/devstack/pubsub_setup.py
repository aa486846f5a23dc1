"""Topics and subscriptions of one deployment on the Pub/Sub emulator, with the real client.

The layout mirrors production (terraform creates the same names from worker/names.json): an
intents topic with a push subscription to the worker (wrapped envelope, ack deadline 600 s, a
retry policy and a dead-letter policy) and a dead-letter topic with a pull subscription, because
Pub/Sub drops what reaches a topic without subscriptions, and a push subscription to the worker's
dead-letter route, which gives each dead letter its outcome. The shared results topic gets a pull
subscription here so the demo and the tests can read the outcome events.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport
from google.pubsub_v1.types import DeadLetterPolicy, ReceivedMessage, RetryPolicy

from worker.names import names as shared_names

# One message per batch, sent at once: the default batching waits up to 10 ms per publish.
_FAST_BATCH = pubsub_v1.types.BatchSettings(max_messages=1, max_latency=0)
# The emulator answers an empty pull after ~2 s; never block one pull longer than this.
_PULL_SLICE_S = 2.0
# A pull is never sent with less time than this (see _pull_iter).
_MIN_PULL_S = 0.25
# The worker's route for dead-letter pushes, shared with terraform.
DEAD_LETTER_PATH: str = shared_names()["pubsub"]["dead_letter_push_path"]
# As in terraform: the dead-letter route reads one record and publishes one outcome, no IB call.
DEAD_LETTER_ACK_S = 60


@dataclass(frozen=True)
class PubSubNames:
    """Resource ids (short names, not paths) of one deployment's Pub/Sub layout."""

    project: str
    intents_topic: str
    intents_push_subscription: str
    dead_letter_topic: str
    dead_letter_subscription: str
    dead_letter_push_subscription: str
    results_topic: str
    results_subscription: str

    @classmethod
    def from_names_file(cls, project: str, mode: str = "paper", suffix: str = "") -> PubSubNames:
        """Build the names from worker/names.json's pubsub section.

        Args:
            project: Project id.
            mode: Trading mode that fills `{mode}` (paper or live).
            suffix: Appended to every name, e.g. to give each test its own resources.
        """
        section = shared_names()["pubsub"]
        keys = ("intents_topic", "intents_push_subscription", "dead_letter_topic")
        keys += ("dead_letter_subscription", "dead_letter_push_subscription", "results_topic")
        names = {k: section[k].format(mode=mode) + suffix for k in keys}
        # Terraform defines no subscription on the shared results topic; a local reader needs one.
        results_sub = section["results_topic"] + "-local-pull" + suffix
        return cls(project=project, results_subscription=results_sub, **names)

    def topic_path(self, topic: str) -> str:
        """Return projects/P/topics/<topic>."""
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        """Return projects/P/subscriptions/<subscription>."""
        return f"projects/{self.project}/subscriptions/{subscription}"


@dataclass(frozen=True)
class PushPolicy:
    """Delivery settings of the intents push subscription (local defaults: quick retries)."""

    ack_deadline_s: int = 600
    max_delivery_attempts: int = 5
    min_backoff_s: float = 1.0
    max_backoff_s: float = 10.0


@dataclass(frozen=True)
class Outcome:
    """One outcome CloudEvent read from the results topic (Pub/Sub binary binding)."""

    id: str
    type: str
    source: str
    subject: str
    time: str
    attributes: Mapping[str, str]
    data: Any
    message_id: str
    ordering_key: str = ""

    @classmethod
    def from_message(cls, received: ReceivedMessage) -> Outcome:
        """Decode a pulled message: ce-* attributes are the context, the body is JSON data."""
        msg = received.message
        attrs = dict(msg.attributes)
        try:
            data: Any = json.loads(msg.data) if msg.data else None
        except ValueError:
            data = msg.data.decode("utf-8", "replace")
        return cls(
            id=attrs.get("ce-id", ""),
            type=attrs.get("ce-type", ""),
            source=attrs.get("ce-source", ""),
            subject=attrs.get("ce-subject", ""),
            time=attrs.get("ce-time", ""),
            attributes=attrs,
            data=data,
            message_id=msg.message_id,
            ordering_key=msg.ordering_key,
        )

    @property
    def kind(self) -> str:
        """The last dotted part of the type: succeeded, failed, rejected or skipped."""
        return self.type.rsplit(".", 1)[-1]


def dead_letter_endpoint(push_endpoint: str) -> str:
    """Return the dead-letter route on the server of push_endpoint.

    Like terraform's "${service uri}/dead-letters": the route hangs off the server's root, not
    off the intents endpoint's path. E.g. http://127.0.0.1:8080/ -> http://127.0.0.1:8080/dead-letters.
    """
    parts = urllib.parse.urlsplit(push_endpoint)
    return f"{parts.scheme}://{parts.netloc}{DEAD_LETTER_PATH}"


def _channel(host: str) -> grpc.Channel:
    # The emulator speaks plain gRPC. An explicit channel keeps us independent of whether
    # PUBSUB_EMULATOR_HOST is set in this process's environment.
    return grpc.insecure_channel(host)


class LocalPubSub:
    """Real Pub/Sub clients bound to an emulator, plus the helpers the demo and tests use."""

    def __init__(self, emulator_host: str, names: PubSubNames) -> None:
        """Create clients for the emulator at emulator_host (host:port)."""
        self.names = names
        self.publisher = pubsub_v1.PublisherClient(
            batch_settings=_FAST_BATCH,
            transport=PublisherGrpcTransport(channel=_channel(emulator_host)),
        )
        self.subscriber = pubsub_v1.SubscriberClient(
            transport=SubscriberGrpcTransport(channel=_channel(emulator_host)),
        )
        self._created: list[tuple[str, str]] = []

    def setup(self, push_endpoint: str, policy: PushPolicy | None = None) -> None:
        """Create the deployment's topics and subscriptions.

        Args:
            push_endpoint: Where intents are pushed (the worker's URL + "/"). Dead letters are
                pushed to DEAD_LETTER_PATH on the same server (see dead_letter_endpoint).
            policy: Delivery settings of the intents push subscription; the dead-letter push
                subscription takes its backoffs, a 60 s ack deadline and no dead-letter policy.
        """
        n, policy = self.names, policy or PushPolicy()
        for topic in (n.intents_topic, n.dead_letter_topic, n.results_topic):
            self.create_topic(topic)
        self.create_pull_subscription(n.dead_letter_subscription, n.dead_letter_topic)
        self.create_pull_subscription(n.results_subscription, n.results_topic)
        # Before the intents subscription: a topic delivers only to subscriptions that existed
        # when a message was published, so no dead letter can miss this one.
        self.create_push_subscription(
            n.dead_letter_push_subscription,
            n.dead_letter_topic,
            dead_letter_endpoint(push_endpoint),
            dataclasses.replace(policy, ack_deadline_s=DEAD_LETTER_ACK_S),
            dead_letters=False,
        )
        self.create_push_subscription(
            n.intents_push_subscription, n.intents_topic, push_endpoint, policy
        )

    def create_topic(self, topic: str) -> str:
        """Create a topic (existing is fine) and return its path."""
        path = self.names.topic_path(topic)
        try:
            self.publisher.create_topic(name=path)
        except gexc.AlreadyExists:
            return path
        self._created.append(("topic", path))
        return path

    def create_pull_subscription(self, subscription: str, topic: str, ack_s: int = 60) -> str:
        """Create a pull subscription on topic and return its path."""
        request = {"ack_deadline_seconds": ack_s}
        return self._create_subscription(subscription, topic, request)

    def create_push_subscription(
        self,
        subscription: str,
        topic: str,
        endpoint: str,
        policy: PushPolicy,
        *,
        dead_letters: bool = True,
    ) -> str:
        """Create a push subscription with the wrapped envelope and a retry policy.

        Args:
            subscription: Subscription id.
            topic: Topic id.
            endpoint: Push endpoint URL.
            policy: Ack deadline, backoffs and max delivery attempts.
            dead_letters: Attach the dead-letter policy (to the deployment's dead-letter topic).
                False for the dead-letter topic's own push subscription, which would loop.
        """
        request: dict[str, Any] = {
            "push_config": {"push_endpoint": endpoint},
            "ack_deadline_seconds": policy.ack_deadline_s,
            "retry_policy": RetryPolicy(
                minimum_backoff=timedelta(seconds=policy.min_backoff_s),
                maximum_backoff=timedelta(seconds=policy.max_backoff_s),
            ),
        }
        if dead_letters:
            request["dead_letter_policy"] = DeadLetterPolicy(
                dead_letter_topic=self.names.topic_path(self.names.dead_letter_topic),
                max_delivery_attempts=policy.max_delivery_attempts,
            )
        return self._create_subscription(subscription, topic, request)

    def _create_subscription(self, subscription: str, topic: str, extra: dict[str, Any]) -> str:
        path = self.names.subscription_path(subscription)
        request = {"name": path, "topic": self.names.topic_path(topic), **extra}
        try:
            self.subscriber.create_subscription(request=request)
        except gexc.AlreadyExists:
            return path
        self._created.append(("subscription", path))
        return path

    def publish_intent(
        self,
        intent: str,
        params: Mapping[str, Any] | None = None,
        attributes: Mapping[str, str] | None = None,
        *,
        topic: str | None = None,
    ) -> str:
        """Publish the intent envelope {"intent", "params"} and return the message id.

        Args:
            intent: Intent name.
            params: Intent parameters (JSON-serialisable).
            attributes: Message attributes such as idempotency_key, account, dry_run.
            topic: Topic id; defaults to the deployment's intents topic.
        """
        body = json.dumps({"intent": intent, "params": dict(params or {})}).encode()
        return self.publish_raw(body, attributes, topic=topic)

    def publish_raw(
        self, data: bytes, attributes: Mapping[str, str] | None = None, *, topic: str | None = None
    ) -> str:
        """Publish arbitrary bytes (e.g. a malformed envelope) and return the message id."""
        path = self.names.topic_path(topic or self.names.intents_topic)
        return str(self.publisher.publish(path, data, **dict(attributes or {})).result(timeout=30))

    def pull(self, subscription: str, timeout: float, expected: int) -> list[ReceivedMessage]:
        """Pull and ack messages from subscription until `expected` arrived or timeout passed.

        Returns:
            The messages received, in arrival order (possibly fewer than expected).
        """
        return list(self._pull_iter(subscription, timeout, expected))

    def pull_outcomes(
        self,
        timeout: float,
        expected: int,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Read outcome events from the results subscription.

        Args:
            timeout: Seconds to wait in total.
            expected: Stop as soon as this many arrived.
            on_outcome: Called with each outcome as it arrives (e.g. to print it).

        Returns:
            The outcomes received, in arrival order (possibly fewer than expected).
        """
        outcomes = []
        for received in self._pull_iter(self.names.results_subscription, timeout, expected):
            outcome = Outcome.from_message(received)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        return outcomes

    def _pull_iter(self, subscription: str, timeout: float, expected: int) -> Iterator[Any]:
        path = self.names.subscription_path(subscription)
        deadline = time.monotonic() + timeout
        count = 0
        while count < expected and (remaining := deadline - time.monotonic()) > 0:
            try:
                # A long poll: the emulator returns as soon as a message is there.
                # Never a near-zero deadline: gRPC then cuts the stream (CANCELLED,
                # RST_STREAM) instead of answering DEADLINE_EXCEEDED.
                resp = self.subscriber.pull(
                    request={"subscription": path, "max_messages": expected - count},
                    timeout=max(min(remaining, _PULL_SLICE_S + 1), _MIN_PULL_S),
                )
            except (gexc.DeadlineExceeded, gexc.Cancelled):
                continue
            if resp.received_messages:
                ack_ids = [m.ack_id for m in resp.received_messages]
                self.subscriber.acknowledge(request={"subscription": path, "ack_ids": ack_ids})
            for received in resp.received_messages:
                count += 1
                yield received

    def delete_created(self) -> None:
        """Delete what this object created, subscriptions first (newest first)."""
        for kind, path in reversed(self._created):
            try:
                if kind == "subscription":
                    self.subscriber.delete_subscription(subscription=path)
                else:
                    self.publisher.delete_topic(topic=path)
            except gexc.NotFound:
                continue
        self._created.clear()

    def close(self) -> None:
        """Close the gRPC channels."""
        self.publisher.transport.close()
        self.subscriber.close()


# Fields of an outcome's data worth a glance, in display order.
_FACTS = ("idempotency_key", "trading_mode", "account", "attempt")


def describe_outcome(outcome: Outcome, width: int = 100) -> str:
    """Return a few readable lines for an outcome event: kind, subject, id, key facts."""
    lines = [f"{outcome.kind.upper():<9} {outcome.subject or '?':<16} id={outcome.id}"]
    lines.append(f"          type={outcome.type} source={outcome.source}")
    data = outcome.data if isinstance(outcome.data, dict) else {"data": outcome.data}
    error = data.get("error")
    if isinstance(error, dict):
        retry = " (retryable)" if error.get("retryable") else ""
        lines.append(f"          error {error.get('code')}: {error.get('message')}{retry}")
    if "result" in data:
        lines.append("          result " + _short(_overview(data["result"]), width))
    facts = "  ".join(f"{k}={_short(data[k], 40)}" for k in _FACTS if data.get(k) is not None)
    if facts:
        lines.append("          " + facts)
    return "\n".join(lines)


def _overview(result: Any) -> Any:
    """Scalars as they are, collections by their size: a result can be pages long."""
    if not isinstance(result, dict):
        return result
    parts = []
    for key, value in result.items():
        if isinstance(value, list | dict):
            parts.append(f"{key}[{len(value)}]")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _short(value: Any, width: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."
