"""JSON log lines for Cloud Logging: severity, message, trace and labels on every line.

Request-scoped fields (trace, intent, key, attempt) live in a ContextVar so any module can log
without passing them around; the formatter adds them. Credentials are never given to a logger:
settings hold none, and ``redact`` scrubs anything that looks like a secret in free text.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_context", default=None
)
_SECRET = re.compile(
    r"(?i)(password|passwd|secret|token|authorization)(\"?\s*[:=]\s*\"?)[^\s\",}]+"
)
TRACE_KEY = "logging.googleapis.com/trace"
LABELS_KEY = "logging.googleapis.com/labels"


def redact(text: str) -> str:
    """Replace the value of anything shaped like ``password=...`` with ``***``."""
    return _SECRET.sub(r"\1\2***", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, in the shape Cloud Logging's agent parses."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = _context.get() or {}
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": redact(record.getMessage()),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        if record.exc_info:
            entry["stack_trace"] = redact(self.formatException(record.exc_info))
        if "trace" in ctx:
            entry[TRACE_KEY] = ctx["trace"]
        labels = {k: str(v) for k, v in ctx.items() if k != "trace"}
        labels.update(getattr(record, "labels", {}))
        if labels:
            entry[LABELS_KEY] = labels
        return json.dumps(entry, default=str)


def setup(level: str = "INFO") -> None:
    """Route the root logger to stdout as JSON (idempotent)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # ib_async logs every wire message at INFO/DEBUG; keep its warnings only.
    for noisy in ("ib_async", "ib_insync", "urllib3", "google"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def trace_from_header(header: str | None, project_id: str) -> str | None:
    """``X-Cloud-Trace-Context: TRACE_ID/SPAN;o=1`` -> ``projects/P/traces/TRACE_ID``."""
    if not header:
        return None
    trace_id = header.split("/", 1)[0].strip()
    if not re.fullmatch(r"[0-9a-fA-F]{1,64}", trace_id):
        return None
    return f"projects/{project_id}/traces/{trace_id}"


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add fields (trace, intent, key, attempt, ...) to every log line inside the block."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context without a block (the caller's ``bound`` resets it)."""
    _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
