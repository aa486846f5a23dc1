"""One delivery, start to end: validate -> claim -> run -> record -> publish -> answer.

``Pipeline.handle`` is the only caller of the run store, the intents and the publisher; it
never raises for a delivery's content. Every path ends in a ``Reply`` whose status follows the
error taxonomy in ``errors.py``: permanent outcomes are acked with their outcome published,
retryable ones are answered 503/429 so Pub/Sub redelivers.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from worker import outcomes
from worker.config import Settings, TradingConfig
from worker.edge import Delivery
from worker.envelope import digest
from worker.errors import (
    BadInput,
    GatewayNotReady,
    IntentFailed,
    InvalidParams,
    KeyReused,
    LeaseHeld,
    Permanent,
    Retryable,
    RiskRefused,
    UnknownIntent,
    WorkerError,
    describe,
    direct_status,
    push_status,
)
from worker.intents import REGISTRY, Context, IntentSpec
from worker.logs import bind
from worker.recording import NoRecorder, Recorder
from worker.runs import Claim, ClaimKind, Heartbeat, RunStore, fingerprint

log = logging.getLogger(__name__)
MAX_PARAMS_BYTES = 64 * 1024  # params are stored in the record (Firestore docs <= 1 MiB)
MAX_ATTEMPTS_FOR_BUGS = 3  # an unexpected exception is retried, then reported as failed
# A finisher records and publishes right after storing its outcome. A copy replaying an
# unpublished outcome within this grace is told to retry later (429), so twenty concurrent
# copies publish once and none is acked before the outcome is out. After the grace, or once
# the finisher marked its publish as failed, a replay publishes for it.
PUBLISH_GRACE = timedelta(seconds=20)
_HOST = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


@dataclass
class _Run:
    """Facts about one delivery gathered on the way through the pipeline."""

    delivery: Delivery
    direct: bool
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    spec: IntentSpec | None = None
    params: Any = None
    account: str = ""
    fp: str = ""

    @property
    def key(self) -> str:
        return self.delivery.key


class Pipeline:
    """Wires the run store, the broker session, the intents and the publisher together."""

    def __init__(
        self,
        settings: Settings,
        runs: RunStore,
        publisher: outcomes.Publisher,
        broker: Any,
        trading_config: TradingConfig,
        recorder: Recorder | None = None,
    ) -> None:
        self.settings = settings
        self.runs = runs
        self.publisher = publisher
        self.broker = broker
        self.trading_config = trading_config
        self.recorder = recorder or NoRecorder()

    def handle(self, delivery: Delivery, direct: bool = False) -> Reply:
        """Process one delivery and say how to answer it."""
        run = _Run(delivery, direct)
        bind(
            key=delivery.key[:128],
            route=delivery.route,
            intent=delivery.intent[:64] or None,
            message_id=delivery.message_id or None,
        )
        try:
            return self._handle(run)
        except WorkerError as exc:
            return _error_reply(run, exc)

    # -- the steps ----------------------------------------------------------------------------
    def _handle(self, run: _Run) -> Reply:
        d = run.delivery
        if d.error is not None:
            return self._final(
                run, d.error.outcome, error=d.error, fp=digest("undecodable", d.route, d.preview)
            )
        if d.options.account and not self._serves(d.options.account):
            log.info("account %s is not served here; acked without a record", d.options.account)
            return Reply(204, {})
        try:
            self._validate(run)
        except Permanent as exc:
            return self._final(run, exc.outcome, error=exc)
        if d.options.not_after and run.received_at > d.options.not_after:
            return self._final(run, "skipped", result={"reason": "not_after has passed"})
        return self._claim_and_run(run)

    def _validate(self, run: _Run) -> None:
        d = run.delivery
        if d.envelope is None:  # decode() sets exactly one of envelope and error
            raise BadInput("delivery has no intent envelope")
        run.fp = fingerprint(
            d.envelope.intent, d.envelope.params, d.options.account, d.options.dry_run
        )
        spec = REGISTRY.get(d.envelope.intent)
        if spec is None:
            raise UnknownIntent(
                f"unknown intent {d.envelope.intent[:64]!r}; known: {', '.join(sorted(REGISTRY))}"
            )
        if len(json.dumps(d.envelope.params)) > MAX_PARAMS_BYTES:
            raise InvalidParams(f"params exceed {MAX_PARAMS_BYTES} bytes")
        try:
            run.params = spec.params.model_validate(d.envelope.params)
        except ValidationError as exc:
            raise InvalidParams(f"invalid params: {describe(exc)}") from None
        if spec.places_orders and d.route == "direct" and not d.options.idempotency_key:
            raise BadInput("intents that place orders need an Idempotency-Key header")
        run.spec = spec
        self._risk_gate(spec)

    def _risk_gate(self, spec: IntentSpec) -> None:
        if not spec.places_orders:
            return  # read-only intents run even with the kill switch on
        if self.settings.trading_mode == "live" and not self.settings.allow_live_trading:
            raise RiskRefused("live trading is not enabled (set ALLOW_LIVE_TRADING=true)")
        if self.trading_config.get().get("tradingEnabled", True) is False:
            raise RiskRefused("trading is disabled by config tradingEnabled=false")

    def _claim_and_run(self, run: _Run) -> Reply:
        holder = f"{_HOST}:{uuid.uuid4().hex[:12]}"
        claim = self.runs.claim(run.key, run.fp, run.delivery.intent, holder)
        if claim.kind is ClaimKind.MISMATCH:
            return self._mismatch(run)
        if claim.kind is ClaimKind.FINISHED:
            return self._replay(run, claim.record)
        if claim.kind is ClaimKind.BUSY:
            raise LeaseHeld("another delivery of this key is running; retry later")
        bind(attempt=claim.attempt)
        return self._execute(run, claim)

    def _execute(self, run: _Run, claim: Claim) -> Reply:
        started = datetime.now(UTC)
        try:
            with Heartbeat(self.runs, claim, self.settings.lease_seconds / 3):
                result = self._run_intent(run)
        except Retryable as exc:
            self.runs.release(claim, exc.message)
            raise
        except Permanent as exc:
            return self._finish(run, claim, exc.outcome, error=exc, started=started)
        except Exception as exc:
            log.exception("intent %s raised unexpectedly", run.delivery.intent)
            return self._unexpected(run, claim, exc, started)
        return self._finish(run, claim, "succeeded", result=result, started=started)

    def _run_intent(self, run: _Run) -> dict[str, Any]:
        if run.spec is None:  # _validate sets it before any claim
            raise IntentFailed("intent was not validated")
        run.account = self._account(run.delivery.options.account)
        ctx = Context(
            broker=self.broker,
            account=run.account,
            dry_run=run.delivery.options.dry_run,
            trading_mode=self.settings.trading_mode,
            timeout=self.settings.intent_timeout_seconds,
            config=self.trading_config.get,
        )
        return run.spec.run(ctx, run.params)

    def _unexpected(self, run: _Run, claim: Claim, exc: Exception, started: datetime) -> Reply:
        if claim.attempt < MAX_ATTEMPTS_FOR_BUGS:
            self.runs.release(claim, repr(exc))
            raise Retryable(f"internal error ({type(exc).__name__}); will retry")
        error = IntentFailed(f"internal error after {claim.attempt} attempts: {type(exc).__name__}")
        return self._finish(run, claim, "failed", error=error, started=started)

    # -- accounts -----------------------------------------------------------------------------
    def _serves(self, account: str) -> bool:
        if self.settings.accounts:
            return account in self.settings.accounts
        if not self.broker.ready:
            raise GatewayNotReady("cannot tell which accounts are served before the gateway is up")
        return account in self.broker.status()["accounts"]

    def _account(self, requested: str | None) -> str:
        if requested:
            return requested
        served = sorted(self.settings.accounts) or self.broker.status()["accounts"]
        if len(served) == 1:
            return served[0]
        if not served:
            raise GatewayNotReady("IB gateway session is not ready")
        raise InvalidParams("this deployment serves several accounts: set the account attribute")

    # -- outcomes -----------------------------------------------------------------------------
    def _final(
        self,
        run: _Run,
        outcome: str,
        *,
        error: WorkerError | None = None,
        result: dict[str, Any] | None = None,
        fp: str | None = None,
    ) -> Reply:
        """An outcome decided without running the intent (rejected, skipped)."""
        stored = self._outcome(
            run,
            outcome,
            error=error,
            result=result,
            started=None,
            event_id=self.runs.doc_id(run.key),
        )
        claim = self.runs.record_final(run.key, fp or run.fp, run.delivery.intent, stored)
        if claim.kind is ClaimKind.MISMATCH:
            return self._mismatch(run)
        if claim.kind is ClaimKind.FINISHED:
            return self._replay(run, claim.record)
        return self._publish_and_reply(run, stored)

    def _finish(
        self,
        run: _Run,
        claim: Claim,
        outcome: str,
        *,
        started: datetime,
        error: WorkerError | None = None,
        result: dict[str, Any] | None = None,
    ) -> Reply:
        stored = self._outcome(
            run,
            outcome,
            error=error,
            result=result,
            started=started,
            event_id=claim.doc_id,
            attempt=claim.attempt,
        )
        record = self.runs.finish(claim, stored)
        if record.get("outcome", {}).get("id") != stored["id"] or record.get("published"):
            return self._replay(run, record)
        return self._publish_and_reply(run, record["outcome"])

    def _mismatch(self, run: _Run) -> Reply:
        """Same key, other content: refuse with an id of its own, never the old outcome."""
        error = KeyReused("idempotency key was already used with different intent/params")
        stored = self._outcome(
            run,
            "rejected",
            error=error,
            started=None,
            event_id=self.runs.mismatch_id(run.key, run.fp),
        )
        self.publisher.publish(stored)
        return _reply(run, stored, replayed=False)

    def _replay(self, run: _Run, record: dict[str, Any]) -> Reply:
        stored = record["outcome"]
        if not record.get("published"):
            if not (record.get("publish_failed") or _publish_overdue(record)):
                raise LeaseHeld("the outcome of this key is being published; retry later")
            self._publish(stored)  # the finisher failed or crashed before publishing
        log.info("replayed the stored %s outcome of this key", stored["outcome"])
        return _reply(run, stored, replayed=True)

    def _publish(self, stored: dict[str, Any]) -> None:
        """Record and publish a stored outcome, then mark its record as published.

        Both sinks are idempotent (BigQuery insertIds, ce-id), so a replay after a failure in
        either one simply does both again.
        """
        self.recorder.record(stored)
        self.publisher.publish(stored)
        self.runs.mark_published(stored["id"])

    def _publish_and_reply(self, run: _Run, stored: dict[str, Any]) -> Reply:
        try:
            self._publish(stored)
        except Retryable:
            self.runs.mark_publish_failed(stored["id"])  # the next replay need not wait
            raise
        log.info("outcome %s published", stored["outcome"])
        return _reply(run, stored, replayed=False)

    def _outcome(
        self,
        run: _Run,
        outcome: str,
        *,
        event_id: str,
        started: datetime | None,
        error: WorkerError | None = None,
        result: dict[str, Any] | None = None,
        attempt: int = 0,
    ) -> dict[str, Any]:
        d, finished = run.delivery, datetime.now(UTC)
        data: dict[str, Any] = {
            "intent": d.intent,
            "idempotency_key": d.key,
            "trading_mode": self.settings.trading_mode,
            "account": run.account or d.options.account,
            "dry_run": d.options.dry_run,
            "attempt": attempt,
            "delivery": {
                "route": d.route,
                "message_id": d.message_id,
                "delivery_attempt": d.delivery_attempt,
            },
            "timings": _timings(run.received_at, started, finished),
            "gateway": {k: v for k, v in self.broker.status().items() if k != "accounts"},
        }
        data["params"] = d.envelope.params if d.envelope else None
        if d.error is not None:
            data["input_preview"] = d.preview
        data.update({"result": result} if error is None else {"error": error.as_dict()})
        return outcomes.build(
            event_id=event_id,
            outcome=outcome,
            source=self.settings.source,
            subject=d.intent,
            time=finished,
            data=data,
        )

    # -- replies ------------------------------------------------------------------------------


def _reply(run: _Run, stored: dict[str, Any], replayed: bool) -> Reply:
    data = outcomes.data_of(stored)
    body = {
        "id": stored["id"],
        "type": stored["type"],
        "outcome": stored["outcome"],
        "replayed": replayed,
        "key": run.key[:256],
    }
    if not run.direct:
        return Reply(200, body)
    body.update({k: data.get(k) for k in ("result", "error") if k in data})
    status = 200 if "error" not in data else direct_status(data["error"]["code"])
    return Reply(status, body)


def _error_reply(run: _Run, exc: WorkerError) -> Reply:
    """Only retryable errors reach here: nothing was published, Pub/Sub will redeliver."""
    log.warning("delivery not processed (%s): %s", exc.code, exc.message)
    status = exc.direct_status if run.direct else push_status(exc)
    return Reply(status, {"error": exc.as_dict(), "key": run.key[:256]})


def _publish_overdue(record: dict[str, Any]) -> bool:
    finished = record.get("finished_at")
    return finished is None or datetime.now(UTC) - finished > PUBLISH_GRACE


def _timings(received: datetime, started: datetime | None, finished: datetime) -> dict[str, Any]:
    return {
        "received_at": received.isoformat(),
        "started_at": started.isoformat() if started else None,
        "finished_at": finished.isoformat(),
        "duration_ms": round((finished - received).total_seconds() * 1000, 1),
    }
