"""The intent envelope: what a delivery asks for, after transport decoding.

Message data carries ``{"intent": name, "params": {...}}``; behaviour-changing options travel as
message attributes (decisions.md, "Where the envelope's fields live"). Attribute names are
matched case-insensitively with '-' and '_' treated alike, because gunicorn drops header names
containing '_' on the unwrapped push path and CloudEvent extensions may not contain either.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_KEY_BYTES = 256  # decisions.md: longer keys and intent names are refused at the edge
ATTRIBUTE_NAMES = ("idempotency_key", "account", "dry_run", "not_after", "dedupe_window")
Account = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,32}$")]


def _short(value: str, what: str) -> str:
    if len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValueError(f"{what} is longer than {MAX_KEY_BYTES} bytes")
    if not value:
        raise ValueError(f"{what} is empty")
    return value


class Envelope(BaseModel):
    """The JSON object in the message data."""

    model_config = ConfigDict(extra="forbid", strict=True)

    intent: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("intent")
    @classmethod
    def _intent_name(cls, value: str) -> str:
        return _short(value, "intent name")


class Options(BaseModel):
    """Delivery options from message attributes (all strings on the wire)."""

    model_config = ConfigDict(extra="ignore")

    idempotency_key: str | None = None
    account: Account | None = None
    dry_run: bool = False
    not_after: datetime | None = None
    dedupe_window: int | None = Field(None, ge=1, le=7 * 86400)

    @field_validator("idempotency_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else _short(value, "idempotency_key")

    @field_validator("not_after")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("not_after needs a time zone (RFC 3339)")
        return value


def pick_attributes(raw: dict[str, Any]) -> dict[str, str]:
    """Our attributes out of a mapping of attributes, headers or CloudEvent extensions."""
    wanted = {name.replace("_", ""): name for name in ATTRIBUTE_NAMES}
    picked: dict[str, str] = {}
    for name, value in raw.items():
        canonical = wanted.get(str(name).lower().replace("-", "").replace("_", ""))
        if canonical and isinstance(value, str) and value != "":
            picked[canonical] = value
    return picked


def canonical_json(value: Any) -> str:
    """Deterministic JSON for hashing (sorted keys, no whitespace)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(*parts: str) -> str:
    """A hex SHA-256 over NUL-separated parts."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def windowed_key(envelope: Envelope, publish_time: datetime, window: int) -> str:
    """Key for a schedule's retries: same intent + params within one window collapse.

    Cloud Scheduler retries arrive with a new messageId (decisions.md, "Schedules").
    """
    bucket = math.floor(publish_time.timestamp() / window)
    body = canonical_json({"intent": envelope.intent, "params": envelope.params})
    return f"window:{window}:{bucket}:{digest(body)[:32]}"
