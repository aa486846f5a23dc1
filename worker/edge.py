"""Bytes + headers -> one ``Delivery``, whatever path the message took.

Paths (tried in this order, like functions-framework: CloudEvent first, then raw push):
- ``eventarc``: binary CloudEvent (ce-* headers), body = MessagePublishedData.
- ``cloudevent``: structured CloudEvent (application/cloudevents+json); its data is either
  MessagePublishedData (type ...messagePublished) or the intent envelope itself.
- ``push-unwrapped``: Pub/Sub push with no_wrapper + write_metadata; body = message data,
  metadata and attributes in headers.
- ``push``: the wrapped Pub/Sub push envelope (JSON).
- ``direct``: ``POST /intents/<name>``, body = params, options in headers.

A delivery that cannot be understood still gets a key (message id, or a hash of the body; a
direct call without Idempotency-Key a key of its own, so its error is answered to it alone) and
an error, so the pipeline can ack it and publish a rejected outcome: nothing is lost and
nothing loops. Text that no store accepts (a lone UTF-16 surrogate such as ``"\ud800"``, valid
JSON and valid ASCII on the wire) is refused here as bad input, before it can reach Firestore.
Downstream code sees only ``Delivery``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from pydantic import ValidationError

from worker.envelope import Envelope, Options, digest, pick_attributes, windowed_key
from worker.errors import BadInput, WorkerError, describe

PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
CE_JSON = "application/cloudevents+json"
PREVIEW_CHARS = 256
# Pub/Sub adds these attributes when it moves a message to a dead-letter topic, as a NEW
# message (new messageId, new publishTime; measured on the emulator, see the README).
DEAD_LETTER_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
DEAD_LETTER_PUBLISHED = "CloudPubSubDeadLetterSourceTopicPublishTime"
SURROGATE = "text holds a lone UTF-16 surrogate (\\ud800-\\udfff), which no store accepts"


@dataclass(frozen=True)
class Message:
    """A Pub/Sub-like message: data bytes plus string attributes and metadata."""

    route: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    publish_time: datetime | None = None
    delivery_attempt: int | None = None


@dataclass(frozen=True)
class Delivery:
    """Everything downstream needs to know about one delivery.

    Exactly one of ``envelope`` and ``error`` is set. ``key`` is always set.
    """

    route: str
    key: str
    options: Options
    envelope: Envelope | None = None
    error: WorkerError | None = None
    message_id: str = ""
    publish_time: datetime | None = None
    delivery_attempt: int | None = None
    preview: str = ""
    dead_letter_attempts: int | None = None

    @property
    def intent(self) -> str:
        return self.envelope.intent if self.envelope else ""


class _Undecodable(BadInput):
    """A BadInput that still knows the message id, when the transport got that far."""

    def __init__(self, message: str, message_id: str = "", route: str = "unknown") -> None:
        super().__init__(message)
        self.message_id = message_id
        self.route = route


def decode(headers: Mapping[str, str], body: bytes, direct_intent: str | None = None) -> Delivery:
    """Turn one HTTP request into a Delivery (never raises for bad input).

    Args:
        headers: request headers (any case).
        body: the complete request body, already size-checked by the caller.
        direct_intent: the ``<name>`` of ``POST /intents/<name>``, None for push paths.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        message = (
            _direct(lowered, body, direct_intent) if direct_intent else _transport(lowered, body)
        )
    except _Undecodable as exc:
        key = exc.message_id or _fallback_key(exc.route, body)
        return Delivery(
            exc.route, key, Options(), error=exc, message_id=exc.message_id, preview=_preview(body)
        )
    return _to_delivery(message)


def oversized(headers: Mapping[str, str], head: bytes, body_hash: str, limit: int) -> Delivery:
    """A Delivery for a body over ``limit`` bytes: rejected, keyed by message id or hash."""
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id = lowered.get("ce-id") or lowered.get("x-goog-pubsub-message-id") or ""
    error = BadInput(f"request body exceeds {limit} bytes")
    return Delivery(
        "oversized",
        message_id or f"body:{body_hash[:40]}",
        Options(),
        error=error,
        message_id=message_id,
        preview=_preview(head),
    )


def _transport(h: dict[str, str], body: bytes) -> Message:
    content_type = h.get("content-type", "").split(";")[0].strip().lower()
    if "ce-specversion" in h or content_type == CE_JSON:
        return _cloudevent(h, body)
    if "x-goog-pubsub-message-id" in h:
        return _unwrapped(h, body)
    if content_type not in ("application/json", ""):
        raise _Undecodable(f"unsupported content type {content_type[:64]!r}", route="push")
    return _wrapped(_json(body, "push"), "push")


def _json(body: bytes, route: str, message_id: str = "") -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # invalid UTF-8 is a ValueError too
        raise _Undecodable(f"body is not valid JSON: {str(exc)[:120]}", message_id, route) from None


def _wrapped(doc: Any, route: str, message_id: str = "") -> Message:
    """The push envelope / MessagePublishedData: {"message": {...}, "subscription": ...}."""
    msg = doc.get("message") if isinstance(doc, dict) else None
    if not isinstance(msg, dict):
        raise _Undecodable("no 'message' object in the push envelope", message_id, route)
    message_id = _text(msg.get("messageId") or msg.get("message_id")) or message_id
    data = _b64(msg.get("data", ""), message_id, route)
    attributes = msg.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise _Undecodable("'attributes' is not an object", message_id, route)
    attempt = doc.get("deliveryAttempt")
    return Message(
        route=route,
        data=data,
        attributes={str(k): v for k, v in attributes.items() if isinstance(v, str)},
        message_id=message_id,
        publish_time=_time(msg.get("publishTime") or msg.get("publish_time")),
        delivery_attempt=attempt if isinstance(attempt, int) else None,
    )


def _unwrapped(h: dict[str, str], body: bytes) -> Message:
    return Message(
        route="push-unwrapped",
        data=body,
        attributes=pick_attributes(h),
        message_id=h["x-goog-pubsub-message-id"][:256],
        publish_time=_time(h.get("x-goog-pubsub-publish-time")),
    )


def _cloudevent(h: dict[str, str], body: bytes) -> Message:
    ce_id = h.get("ce-id", "")[:256]
    try:
        event = from_http_event(HTTPMessage(headers=h, body=body))
        attrs = event.get_attributes()
        data = event.get_data()
    except Exception as exc:
        raise _Undecodable(f"invalid CloudEvent: {str(exc)[:160]}", ce_id, "cloudevent") from None
    route = "eventarc" if "ce-specversion" in h else "cloudevent"
    if attrs.get("type") == PUBSUB_PUBLISHED:
        doc = data if isinstance(data, dict) else _json(_bytes(data), route, event.get_id())
        return _wrapped(doc, route, event.get_id())
    # Any other CloudEvent carries the intent envelope as its data; options are extensions.
    return Message(
        route=route,
        data=_bytes(data),
        attributes=pick_attributes(attrs),
        message_id=event.get_id(),
        publish_time=attrs.get("time"),
    )


def _direct(h: dict[str, str], body: bytes, intent: str) -> Message:
    content_type = h.get("content-type", "").split(";")[0].strip().lower()
    if body and content_type != "application/json":
        raise _Undecodable("direct calls take application/json", route="direct")
    params = _json(body, "direct") if body else {}
    envelope = json.dumps({"intent": intent, "params": params}).encode()
    return Message(route="direct", data=envelope, attributes=pick_attributes(h))


def _to_delivery(m: Message) -> Delivery:
    if not _storable(m.message_id):
        m = replace(m, message_id="")
    if DEAD_LETTER_PUBLISHED in m.attributes:  # the original's time keeps windowed keys stable
        m = replace(m, publish_time=_time(m.attributes[DEAD_LETTER_PUBLISHED]) or m.publish_time)
    message_id = m.message_id
    meta = {
        "message_id": message_id,
        "publish_time": m.publish_time,
        "delivery_attempt": m.delivery_attempt,
        "preview": _preview(m.data),
        "dead_letter_attempts": _int(m.attributes.get(DEAD_LETTER_COUNT)),
    }
    fallback = message_id or _fallback_key(m.route, m.data)
    try:
        options = Options.model_validate(pick_attributes(m.attributes))
    except ValidationError as exc:
        error = BadInput(f"invalid attributes: {describe(exc)}")
        return Delivery(m.route, fallback, Options(), error=error, **meta)
    if not _storable(options.model_dump(mode="json")):
        return Delivery(m.route, fallback, Options(), error=BadInput(SURROGATE), **meta)
    try:
        envelope = Envelope.model_validate(_json(m.data, m.route, message_id))
    except (ValidationError, _Undecodable) as exc:
        reason = describe(exc) if isinstance(exc, ValidationError) else exc.message
        error = BadInput(f"invalid intent envelope: {reason}")
        return Delivery(m.route, options.idempotency_key or fallback, options, error=error, **meta)
    if not _storable(envelope.model_dump()):
        key = options.idempotency_key or fallback
        return Delivery(m.route, key, options, error=BadInput(SURROGATE), **meta)
    return Delivery(m.route, _key(m, envelope, options), options, envelope=envelope, **meta)


def _key(m: Message, envelope: Envelope, options: Options) -> str:
    if options.idempotency_key:
        return options.idempotency_key
    if options.dedupe_window and m.publish_time:
        return windowed_key(envelope, m.publish_time, options.dedupe_window)
    if m.route == "direct":
        return f"direct:{uuid.uuid4()}"  # no Idempotency-Key: every call is a new run
    return m.message_id or _fallback_key(m.route, m.data)


def _fallback_key(route: str, body: bytes) -> str:
    """The key of a delivery that names none: a direct call is answered to itself alone; a
    push message always has an id, so a body hash covers only hostile bodies lacking one."""
    return f"direct:{uuid.uuid4()}" if route == "direct" else f"body:{digest(body.hex())[:40]}"


def _storable(*values: Any) -> bool:
    """False when some text holds a lone surrogate, which UTF-8 (and so Firestore) refuses."""
    try:
        json.dumps(values, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _b64(value: Any, message_id: str, route: str) -> bytes:
    if not isinstance(value, str):
        raise _Undecodable("'data' is not a base64 string", message_id, route)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Undecodable("'data' is not valid base64", message_id, route) from None


def _bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    return json.dumps(data).encode() if data is not None else b""


def _text(value: Any) -> str:
    return value[:256] if isinstance(value, str) and _storable(value) else ""


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _preview(data: bytes) -> str:
    return data[: PREVIEW_CHARS * 4].decode("utf-8", "replace")[:PREVIEW_CHARS]
