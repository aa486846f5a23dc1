"""The outcome CloudEvent, and its publication to the results topic.

An outcome is built once, stored in the idempotency record (``runs.py``) and published from
that stored form, so a replay republishes exactly the same event: same ce-id, same data.
Publication uses the CloudEvents Pub/Sub binding in binary mode: context attributes become
``ce-*`` message attributes, the data is the message body. Plain ``trading_mode``, ``account``,
``intent`` and ``outcome`` attributes are added for subscription filters.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from cloudevents.core.v1.event import CloudEvent
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from worker.edge import Delivery
from worker.errors import PublishFailed, Retryable, WorkerError
from worker.names import canonical_intent, event_type

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT = 10.0


def build(
    *,
    event_id: str,
    outcome: str,
    source: str,
    subject: str,
    time: datetime,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The stored form of an outcome event (Firestore-safe: data kept as a JSON string).

    Args:
        event_id: hash(deployment, key); see ``RunStore.doc_id``.
        outcome: succeeded, failed, rejected or skipped.
        source: the deployment's CloudEvent source.
        subject: the intent name (may be empty when the delivery was not understood).
        time: when the outcome was decided.
        data: the payload (intent, params, result or error, timings, mode, account, ...).
    """
    return {
        "id": event_id,
        "outcome": outcome,
        "type": event_type(outcome),
        "source": source,
        "subject": subject,
        "time": time.isoformat(),
        "data_json": json.dumps(data, default=str, ensure_ascii=False),
    }


class Factory:
    """Builds the stored outcome of a delivery: what it asked, what happened, and when."""

    def __init__(
        self, source: str, trading_mode: str, gateway: Callable[[], dict[str, Any]]
    ) -> None:
        self._source = source
        self._mode = trading_mode
        self._gateway = gateway

    def make(
        self,
        d: Delivery,
        *,
        event_id: str,
        outcome: str,
        received_at: datetime,
        started_at: datetime | None = None,
        attempt: int = 0,
        account: str = "",
        result: dict[str, Any] | None = None,
        error: WorkerError | None = None,
        legs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The stored outcome (see ``build``); exactly one of ``result`` and ``error`` counts."""
        finished = datetime.now(UTC)
        data: dict[str, Any] = {
            "intent": d.intent,
            "idempotency_key": d.key,
            "trading_mode": self._mode,
            "account": account or d.options.account,
            "dry_run": d.options.dry_run,
            "attempt": attempt,
            "delivery": {
                "route": d.route,
                "message_id": d.message_id,
                "delivery_attempt": d.delivery_attempt,
            },
            "timings": _timings(received_at, started_at, finished),
            "gateway": {k: v for k, v in self._gateway().items() if k != "accounts"},
            "params": d.envelope.params if d.envelope else None,
        }
        if d.error is not None:
            data["input_preview"] = d.preview
        if legs:
            data["legs"] = legs  # every order this key sent, whatever the outcome
        data.update({"result": result} if error is None else {"error": error.as_dict()})
        return build(
            event_id=event_id,
            outcome=outcome,
            source=self._source,
            subject=canonical_intent(d.intent),  # our name, also for the earlier system's spelling
            time=finished,
            data=data,
        )


def _timings(received: datetime, started: datetime | None, finished: datetime) -> dict[str, Any]:
    return {
        "received_at": received.isoformat(),
        "started_at": started.isoformat() if started else None,
        "finished_at": finished.isoformat(),
        "duration_ms": round((finished - received).total_seconds() * 1000, 1),
    }


def data_of(stored: dict[str, Any]) -> dict[str, Any]:
    """The payload of a stored outcome."""
    return json.loads(stored["data_json"])


def to_cloudevent(stored: dict[str, Any]) -> CloudEvent:
    """The SDK's CloudEvent for a stored outcome (validates the attributes)."""
    data = data_of(stored)
    attributes: dict[str, Any] = {
        "id": stored["id"],
        "source": stored["source"],
        "type": stored["type"],
        "time": datetime.fromisoformat(stored["time"]),
        "datacontenttype": "application/json",
        "tradingmode": data.get("trading_mode", ""),
    }
    if stored.get("subject"):
        attributes["subject"] = stored["subject"]
    if data.get("account"):
        attributes["account"] = data["account"]
    return CloudEvent(attributes=attributes, data=data)


def pubsub_message(stored: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """Body and attributes of the Pub/Sub message for a stored outcome (binary binding)."""
    event = to_cloudevent(stored)
    attributes: dict[str, str] = {}
    for name, value in event.get_attributes().items():
        if name == "datacontenttype":
            attributes["content-type"] = str(value)
        else:
            attributes[f"ce-{name}"] = (
                value.isoformat() if isinstance(value, datetime) else str(value)
            )
    data = data_of(stored)
    attributes.update(
        trading_mode=str(data.get("trading_mode", "")),
        account=str(data.get("account") or ""),
        intent=stored.get("subject", ""),
        outcome=stored["outcome"],
    )
    return stored["data_json"].encode("utf-8"), attributes


class Publisher:
    """Publishes stored outcomes to the results topic, one awaited message at a time."""

    def __init__(self, project_id: str, topic: str, client: Any | None = None) -> None:
        self._client = client or pubsub_v1.PublisherClient(
            # One message per batch: an awaited publish otherwise waits for the batch timer.
            batch_settings=pubsub_v1.types.BatchSettings(max_messages=1, max_latency=0),
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
        )
        self._topic = self._client.topic_path(project_id, topic)

    def publish(self, stored: dict[str, Any]) -> str:
        """Publish and wait for the server's ack; raises PublishFailed (retryable)."""
        body, attributes = pubsub_message(stored)
        ordering_key = attributes["account"]  # per-account order for downstream consumers
        try:
            future = self._client.publish(
                self._topic, body, ordering_key=ordering_key, **attributes
            )
            return future.result(timeout=PUBLISH_TIMEOUT)
        except (gexc.GoogleAPIError, TimeoutError, RuntimeError) as exc:
            if ordering_key:
                # A failed publish pauses its ordering key until resumed.
                self._client.resume_publish(self._topic, ordering_key)
            raise PublishFailed(f"publishing outcome failed: {type(exc).__name__}") from exc


class Sink(Protocol):
    def record(self, stored: dict[str, Any]) -> None: ...


class Outbox:
    """Records, publishes and marks one stored outcome (the publish-once protocol, runs.py).

    Both sinks are idempotent (BigQuery insertIds, ce-id), so a replay after a failure in
    either one simply does both again.
    """

    def __init__(
        self,
        publisher: Publisher,
        recorder: Sink,
        mark_published: Callable[[str], None],
        mark_failed: Callable[[str], None],
    ) -> None:
        self._publisher = publisher
        self._recorder = recorder
        self._mark_published = mark_published
        self._mark_failed = mark_failed

    def send(self, stored: dict[str, Any]) -> None:
        """Record and publish; on failure tell replays not to wait for us, and re-raise."""
        try:
            self._recorder.record(stored)
            self._publisher.publish(stored)
        except Retryable:
            self._mark_failed(stored["id"])
            raise
        self._mark_published(stored["id"])

    def publish_only(self, stored: dict[str, Any]) -> None:
        """An outcome kept outside any record (a refused key reuse has its own id)."""
        self._publisher.publish(stored)
