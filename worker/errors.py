"""One error root, two families, and the one table that maps them to HTTP.

Pub/Sub push treats every non-2xx answer as a nack and redelivers, so a *permanent* failure is
acked (2xx) and reported as a failed or rejected outcome, while a *retryable* one is answered
503/429 so Pub/Sub tries again with backoff (gcp-conventions.md, "Pub/Sub push").
Direct calls (``POST /intents/<name>``) are not redelivered by anyone, so they get the
IETF Idempotency-Key draft's status codes instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError


class WorkerError(Exception):
    """Root of every error the pipeline reports in an outcome.

    Attributes:
        code: stable machine-readable code carried in outcome events and responses.
        retryable: True when the same delivery may succeed later.
        outcome: the outcome type a permanent error produces ("failed" or "rejected").
    """

    code: ClassVar[str] = "error"
    retryable: ClassVar[bool] = False
    outcome: ClassVar[str] = "failed"
    direct_status: ClassVar[int] = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.details:
            body["details"] = self.details
        return body


class Permanent(WorkerError):
    """Retrying the same delivery cannot succeed: ack it and publish the outcome."""

    code = "permanent"
    direct_status = 422


class Retryable(WorkerError):
    """The delivery may succeed later: nack it so Pub/Sub redelivers with backoff."""

    code = "retryable"
    retryable = True
    direct_status = 503


# --- permanent: the caller sent something we will never accept -> "rejected" ---------------
class BadInput(Permanent):
    code = "bad_input"
    outcome = "rejected"
    direct_status = 400


class UnknownIntent(Permanent):
    code = "unknown_intent"
    outcome = "rejected"
    direct_status = 404


class InvalidParams(Permanent):
    code = "invalid_params"
    outcome = "rejected"
    direct_status = 422


class KeyReused(Permanent):
    """An idempotency key came back with a different fingerprint (idempotency.md)."""

    code = "idempotency_key_reused"
    outcome = "rejected"
    direct_status = 422


class RiskRefused(Permanent):
    """A risk gate (kill switch, live opt-in, limits) refused to run the intent."""

    code = "risk_refused"
    outcome = "rejected"
    direct_status = 403


class MarketClosed(Permanent):
    """The instrument's market is closed and the config says ``when_closed: skip``."""

    code = "market_closed"
    outcome = "skipped"
    direct_status = 200


class ConfigInvalid(Permanent):
    """The trading config (Firestore ``config/*``) does not validate: nothing is traded."""

    code = "config_invalid"
    outcome = "failed"
    direct_status = 422


class OrderRejected(Permanent):
    """The broker rejected an order (IB error 201 and friends)."""

    code = "order_rejected"
    outcome = "failed"
    direct_status = 422


class Incomplete(Permanent):
    """The intent ran, but part of it did not: a strategy failed, or IB rejected a leg. What
    did run stays done (never rerun); ``details.result`` is the whole result, so the run is
    never reported as a plain success."""

    code = "incomplete"
    outcome = "failed"
    direct_status = 422


class IntentFailed(Permanent):
    """The intent ran and failed for a reason retrying will not fix."""

    code = "intent_failed"
    outcome = "failed"
    direct_status = 422


class NoPrice(IntentFailed):
    """No quote, last trade or close to size or check an order with (IB's reason, if it gave
    one, in the message). An allocation freezes only the strategies that need the instrument."""

    code = "no_price"


class ContractNotFound(Permanent):
    """IB knows no contract matching the spec (error 200), or several do."""

    code = "contract_not_found"
    outcome = "failed"
    direct_status = 422


class DataRefused(Permanent):
    """IB refused a historical data request for good (no data for it, no permission, a bar size
    or duration it does not serve): its code and text in the message."""

    code = "data_refused"
    outcome = "failed"
    direct_status = 422


class DeadLettered(Permanent):
    """Pub/Sub gave up on the delivery after its last attempt (``POST /dead-letters``)."""

    code = "dead_lettered"
    outcome = "failed"
    direct_status = 422


class NotAfterPassed(Permanent):
    """The delivery arrived after its ``not_after``: acked, nothing run."""

    code = "not_after_passed"
    outcome = "skipped"
    direct_status = 200


# --- retryable: something we depend on is not there yet --------------------------------------
class GatewayNotReady(Retryable):
    code = "gateway_not_ready"


class StoreUnavailable(Retryable):
    code = "store_unavailable"


class PublishFailed(Retryable):
    code = "publish_failed"


class RecordFailed(Retryable):
    code = "record_failed"


class LeaseHeld(Retryable):
    """Another holder is running this key right now; come back later (HTTP 409 direct)."""

    code = "lease_held"
    direct_status = 409


class Superseded(Retryable):
    """This run's lease was taken over by another delivery: it stops and publishes nothing.

    Answered 429, never acked: the taker's own delivery publishes the outcome, and a 2xx here
    could ack the message while the taker may still fail.
    """

    code = "superseded"
    direct_status = 409


class OrderStateUnknown(Retryable):
    """An order may or may not exist: sent without acknowledgement, or a search that did not
    complete. Never "not there": the next attempt searches again before sending anything."""

    code = "order_state_unknown"


class OrderNotTaken(Retryable):
    """IB certainly did not take the order (every order id tried was answered 103, duplicate
    id): nothing exists at the broker, so a later attempt may send it, after its search."""

    code = "order_not_taken"


class IntentTimeout(Retryable):
    code = "timeout"
    direct_status = 504


# Pub/Sub push: ack codes are 102/200/201/202/204. 429 and 503 both mean "redeliver"; 429 tells
# a human reading the logs it was contention, not an outage.
PUSH_STATUS: dict[type[WorkerError], int] = {
    LeaseHeld: 429,
    Superseded: 429,
    Retryable: 503,
    Permanent: 200,
}


def push_status(error: WorkerError) -> int:
    """HTTP status for a push delivery that ended in ``error`` (the only mapping for push)."""
    for kind, status in PUSH_STATUS.items():
        if isinstance(error, kind):
            return status
    return 503  # an unknown WorkerError: let Pub/Sub retry rather than lose the message


def direct_status(code: str) -> int:
    """HTTP status of a direct call whose outcome carries error ``code``."""
    pending: list[type[WorkerError]] = [WorkerError]
    while pending:
        kind = pending.pop()
        if kind.code == code:
            return kind.direct_status
        pending.extend(kind.__subclasses__())
    return Permanent.direct_status


def describe(exc: ValidationError, limit: int = 5) -> str:
    """A pydantic error list as one short line: ``loc: message; ...``."""
    parts = [f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()[:limit]]
    return "; ".join(parts)[:500]
