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
from datetime import datetime
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from worker.errors import PublishFailed
from worker.names import event_type

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
