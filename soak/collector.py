"""Every outcome event the worker publishes, read from the results topic as it arrives.

A background thread pulls the results subscription for the whole soak (the emulator's long
poll answers as soon as a message is there) and keeps each message, republished copies
included: downstream dedupes on ce-id, so "one outcome per key" means one distinct event id,
and the copies are counted separately.

Every pull gets a deadline longer than the emulator's long poll (it answers an empty pull after
about 2 s): a pull the client cuts short is a cancelled stream, on which the emulator of CLI 528
throws (NoSuchMethodError in its gRPC server) and a message it had handed to that pull was
seen never to come back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from google.api_core import exceptions as gexc
from google.pubsub_v1.types import ReceivedMessage

from worker.devstack.pubsub_setup import LocalPubSub, Outcome

PULL_DEADLINE_S = 10.0  # well past the emulator's ~2 s answer to an empty pull


@dataclass(frozen=True)
class Seen:
    """One outcome message as received.

    Attributes:
        key: The data's idempotency_key.
        event_id: ce-id (hash of deployment and key for the key's own outcome).
        kind: succeeded, failed, rejected or skipped.
        error_code: error.code of a failure ("" for success).
        message_id: The Pub/Sub message id (differs between republished copies).
        at: time.monotonic() when it arrived.
    """

    key: str
    event_id: str
    kind: str
    error_code: str
    message_id: str
    at: float


def seen_of(outcome: Outcome, at: float) -> Seen:
    data = outcome.data if isinstance(outcome.data, dict) else {}
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    key = str(data.get("idempotency_key") or "")
    code = str(error.get("code") or "")
    return Seen(key, outcome.id, outcome.kind, code, outcome.message_id, at)


class OutcomeCollector:
    """Pulls the results subscription on a thread until ``stop``; thread-safe reads."""

    def __init__(self, pubsub: LocalPubSub) -> None:
        self._pubsub = pubsub
        self._cond = threading.Condition()
        self._seen: list[Seen] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._pull, name="outcomes", daemon=True)

    def start(self) -> OutcomeCollector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=PULL_DEADLINE_S + 5)

    def seen(self) -> list[Seen]:
        with self._cond:
            return list(self._seen)

    def first_at(self, key: str) -> float | None:
        """When the first outcome of ``key`` arrived (monotonic), or None."""
        with self._cond:
            return next((s.at for s in self._seen if s.key == key), None)

    def wait_for(self, keys: Iterable[str], deadline: float) -> set[str]:
        """Wait until every key has an outcome or ``deadline`` (monotonic); the missing."""
        wanted = set(keys)
        with self._cond:
            while True:
                missing = wanted - {s.key for s in self._seen}
                remaining = deadline - time.monotonic()
                if not missing or remaining <= 0:
                    return missing
                self._cond.wait(min(remaining, 1.0))

    def _pull(self) -> None:
        subscription = self._pubsub.names.results_subscription
        while not self._stopping.is_set():
            try:
                got = pull_once(self._pubsub, subscription)
            except gexc.GoogleAPIError:
                time.sleep(0.2)
                continue
            if got:
                now = time.monotonic()
                with self._cond:
                    self._seen += [seen_of(Outcome.from_message(m), now) for m in got]
                    self._cond.notify_all()


def pull_once(pubsub: LocalPubSub, subscription: str, most: int = 100) -> list[ReceivedMessage]:
    """One pull, never cut short by us (see the module docstring), acked at once."""
    path = pubsub.names.subscription_path(subscription)
    request = {"subscription": path, "max_messages": most}
    response = pubsub.subscriber.pull(request=request, timeout=PULL_DEADLINE_S)
    received = list(response.received_messages)
    if received:
        ack_ids = [m.ack_id for m in received]
        pubsub.subscriber.acknowledge(request={"subscription": path, "ack_ids": ack_ids})
    return received


def drain(pubsub: LocalPubSub, subscription: str) -> list[ReceivedMessage]:
    """Everything a subscription holds now: pull until a pull comes back empty."""
    received: list[ReceivedMessage] = []
    while got := pull_once(pubsub, subscription):
        received += got
    return received
