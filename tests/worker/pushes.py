"""Building Pub/Sub push request bodies for tests that POST to the worker themselves."""

from __future__ import annotations

import base64
import json

JSON = {"Content-Type": "application/json"}


def push_body(data: bytes | dict, message_id: str, attributes: dict | None = None) -> bytes:
    """A wrapped push envelope; ``data`` is raw bytes or an envelope dict to JSON-encode."""
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    message = {
        "data": base64.b64encode(raw).decode(),
        "messageId": message_id,
        "publishTime": "2026-11-24T15:00:00Z",
        "attributes": attributes or {},
    }
    return json.dumps({"message": message, "subscription": "projects/p/subscriptions/s"}).encode()
