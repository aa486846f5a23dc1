"""edge.decode: every delivery path, and every kind of malformed input, as pure units."""

from __future__ import annotations

import base64
import json

import pytest

from worker import edge
from worker.envelope import MAX_KEY_BYTES

ENVELOPE = {"intent": "summary", "params": {"sections": ["values"]}}


def b64(obj: object) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.b64encode(raw).decode()


def wrapped(data: object = ENVELOPE, attributes: dict | None = None, **extra: object) -> bytes:
    message = {
        "data": b64(data),
        "attributes": attributes or {},
        "messageId": "111",
        "publishTime": "2026-11-24T14:30:00.123Z",
    }
    return json.dumps(
        {"message": message, "subscription": "projects/p/subscriptions/s", **extra}
    ).encode()


JSON = {"Content-Type": "application/json"}


def test_wrapped_push() -> None:
    d = edge.decode(
        JSON, wrapped(attributes={"account": "DU1", "dry_run": "true"}, deliveryAttempt=3)
    )
    assert d.error is None
    assert (d.route, d.intent, d.key, d.message_id) == ("push", "summary", "111", "111")
    assert d.envelope.params == {"sections": ["values"]}
    assert d.options.account == "DU1"
    assert d.options.dry_run is True
    assert d.delivery_attempt == 3
    assert d.publish_time.isoformat() == "2026-11-24T14:30:00.123000+00:00"


def test_explicit_key_wins_over_message_id() -> None:
    d = edge.decode(JSON, wrapped(attributes={"idempotency_key": "a/b/../c"}))
    assert d.key == "a/b/../c"


def test_dedupe_window_keys_schedule_retries_alike() -> None:
    attrs = {"dedupe_window": "300"}
    first = edge.decode(JSON, wrapped(attributes=attrs))
    body = json.loads(wrapped(attributes=attrs))
    body["message"]["messageId"] = "222"  # Cloud Scheduler's retry: new message id
    body["message"]["publishTime"] = "2026-11-24T14:31:00Z"
    second = edge.decode(JSON, json.dumps(body).encode())
    assert first.key == second.key
    assert first.key.startswith("window:300:")


def test_unwrapped_push_takes_hyphenated_attribute_headers() -> None:
    headers = {
        "Content-Type": "application/json",
        "X-Goog-Pubsub-Message-Id": "42",
        "X-Goog-Pubsub-Publish-Time": "2026-11-24T14:30:00Z",
        "Idempotency-Key": "k1",
        "Account": "DU9",
    }
    d = edge.decode(headers, json.dumps(ENVELOPE).encode())
    assert (d.route, d.key, d.options.account, d.intent) == (
        "push-unwrapped",
        "k1",
        "DU9",
        "summary",
    )


def test_eventarc_binary_cloudevent() -> None:
    headers = {
        "ce-id": "777",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-specversion": "1.0",
        "ce-type": edge.PUBSUB_PUBLISHED,
        "ce-time": "2026-11-24T14:30:00Z",
        "Content-Type": "application/json",
    }
    d = edge.decode(headers, wrapped(attributes={"account": "DU1"}))
    assert d.error is None
    assert (d.route, d.message_id, d.key, d.options.account) == ("eventarc", "111", "111", "DU1")


def test_structured_cloudevent_with_envelope_data() -> None:
    event = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/me",
        "type": "com.example.intent",
        "idempotencykey": "k-ce",
        "datacontenttype": "application/json",
        "data": ENVELOPE,
    }
    d = edge.decode({"Content-Type": "application/cloudevents+json"}, json.dumps(event).encode())
    assert (d.route, d.key, d.intent, d.message_id) == ("cloudevent", "k-ce", "summary", "ce-1")


def test_direct_call() -> None:
    d = edge.decode(
        {"Content-Type": "application/json", "Idempotency-Key": "k"},
        b'{"sections": ["fills"]}',
        direct_intent="summary",
    )
    assert (d.route, d.key, d.intent) == ("direct", "k", "summary")
    assert d.envelope.params == {"sections": ["fills"]}


def test_direct_call_without_key_is_a_new_run_each_time() -> None:
    first = edge.decode({}, b"", direct_intent="summary")
    second = edge.decode({}, b"", direct_intent="summary")
    assert first.error is None
    assert first.key != second.key


BAD = {
    "not json": (JSON, b"{nope"),
    "invalid utf-8": (JSON, b'{"message": "\xff\xfe"}'),
    "deep nesting": (JSON, b"[" * 100_000 + b"]" * 100_000),
    "no message": (JSON, b'{"subscription": "s"}'),
    "message not object": (JSON, b'{"message": 5}'),
    "bad base64": (JSON, b'{"message": {"data": "%%%", "messageId": "9"}}'),
    "data not string": (JSON, b'{"message": {"data": 5, "messageId": "9"}}'),
    "attributes not object": (
        JSON,
        b'{"message": {"data": "", "attributes": [], "messageId": "9"}}',
    ),
    "wrong content type": ({"Content-Type": "text/plain"}, wrapped()),
    "data not json": (JSON, wrapped(b"\x00\x01binary")),
    "envelope missing intent": (JSON, wrapped({"params": {}})),
    "params wrong type": (JSON, wrapped({"intent": "summary", "params": [1, 2]})),
    "intent wrong type": (JSON, wrapped({"intent": 5})),
    "extra envelope field": (JSON, wrapped({**ENVELOPE, "surprise": 1})),
    "intent too long": (JSON, wrapped({"intent": "x" * (MAX_KEY_BYTES + 1)})),
    "key too long": (JSON, wrapped(attributes={"idempotency_key": "k" * (MAX_KEY_BYTES + 1)})),
    "bad not_after": (JSON, wrapped(attributes={"not_after": "tomorrow"})),
    "naive not_after": (JSON, wrapped(attributes={"not_after": "2026-11-24T10:00:00"})),
    "bad account": (JSON, wrapped(attributes={"account": "DU1/../x"})),
    "bad binary ce": ({"ce-specversion": "1.0", "ce-id": "5"}, b"{}"),
    "bad structured ce": ({"Content-Type": "application/cloudevents+json"}, b'{"id": 1}'),
    "direct not json": ({"Content-Type": "application/json"}, b"nope"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_input_is_a_keyed_bad_input(name: str) -> None:
    headers, body = BAD[name]
    d = edge.decode(headers, body, direct_intent="summary" if name.startswith("direct") else None)
    assert d.error is not None, d
    assert d.error.code == "bad_input"
    assert d.envelope is None
    assert d.key
    assert len(d.preview) <= edge.PREVIEW_CHARS


def test_bad_input_keeps_the_message_id_as_key() -> None:
    d = edge.decode(JSON, wrapped({"params": {}}))
    assert d.key == "111"


def test_oversized_is_keyed_by_message_id_or_hash() -> None:
    d = edge.oversized({"X-Goog-Pubsub-Message-Id": "5"}, b"x" * 10, "ab" * 32, 1024)
    assert (d.key, d.error.code) == ("5", "bad_input")
    assert edge.oversized({}, b"x", "cd" * 32, 1024).key == "body:" + "cd" * 20
