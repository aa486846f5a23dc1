"""One delivery, start to end: admit -> claim -> run -> finish -> publish -> answer.

``Pipeline.handle`` only orchestrates: admission (``admission.py``) decides what may run, the
record's state machine (``runs.py``) decides who runs it, ``execution.py`` runs the intent on
its ``Context`` (orders through ``ctx.orders``, ``journal.py``), and ``outcomes.py`` publishes.
It never
raises for a delivery's content: every path ends in a ``Reply`` whose status follows the one
table in ``errors.py`` (permanent outcomes acked and published, retryable ones 503/429).
After a claim, no exception leaves a lease held: the run finishes (an unexpected error, after
a retry budget, as failed), or the lease is released, or another holder has it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from worker import outcomes
from worker.admission import Admission, Admitted, NotServed, fingerprint_of
from worker.config import Settings, TradingConfig
from worker.edge import Delivery
from worker.errors import (
    DeadLettered,
    IntentFailed,
    KeyReused,
    LeaseHeld,
    Permanent,
    Retryable,
    StoreUnavailable,
    Superseded,
    WorkerError,
    direct_status,
    push_status,
)
from worker.execution import Executor
from worker.holdings import Books
from worker.logs import bind
from worker.recording import NoRecorder, Recorder
from worker.runs import ClaimKind, Lease, Replay, RunStore, replay_of

log = logging.getLogger(__name__)
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

    @property
    def key(self) -> str:
        return self.delivery.key


class Pipeline:
    """Wires admission, the run store, the broker session, the intents and the outbox."""

    def __init__(
        self,
        settings: Settings,
        runs: RunStore,
        publisher: outcomes.Publisher,
        broker: Any,
        trading_config: TradingConfig,
        recorder: Recorder | None = None,
        books: Books | None = None,
    ) -> None:
        self.settings = settings
        self.runs = runs
        self.broker = broker
        self.trading_config = trading_config
        self.admission = Admission(settings, trading_config.get, broker.accounts_if_ready)
        self.outcomes = outcomes.Factory(settings.source, settings.trading_mode, broker.status)
        self.executor = Executor(
            settings,
            broker,
            trading_config.get,
            self.admission.account_for,
            self.outcomes,
            books,
            recorder,
        )
        recorder = recorder or NoRecorder()
        self.outbox = outcomes.Outbox(
            publisher, recorder, runs.mark_published, runs.mark_publish_failed
        )
        # Outcomes whose finishing write failed (Firestore away): the retry finishes them
        # instead of running the intent again.
        self._unfinished: dict[str, tuple[Lease, dict[str, Any]]] = {}
        self._unfinished_lock = threading.Lock()

    def handle(self, delivery: Delivery, direct: bool = False) -> Reply:
        """Process one delivery and say how to answer it."""
        return self._guarded(_Run(delivery, direct), self._handle)

    def dead_letter(self, delivery: Delivery) -> Reply:
        """A delivery Pub/Sub gave up on: finish its key as failed unless it has an outcome."""
        attempts = delivery.dead_letter_attempts
        error = DeadLettered(
            f"Pub/Sub gave up after {attempts or 'its maximum'} delivery attempts",
            {"delivery_attempts": attempts},
        )
        return self._guarded(
            _Run(delivery, False), lambda run: self._final(self._original(run), error)
        )

    def _original(self, run: _Run) -> _Run:
        """A dead letter is a new message (new id): a key that was the original message id is
        found again through the record's fingerprint and publish time."""
        d = run.delivery
        if d.options.idempotency_key or d.options.dedupe_window or d.publish_time is None:
            return run  # the key is carried by the message itself
        fp = fingerprint_of(d)
        key = self.runs.find_key(fp, d.publish_time)
        key = key or f"dead-letter:{d.publish_time.isoformat()}:{fp[:32]}"  # never claimed
        return _Run(replace(d, key=key), run.direct, run.received_at)

    # -- the steps ----------------------------------------------------------------------------
    def _guarded(self, run: _Run, step: Any) -> Reply:
        d = run.delivery
        bind(key=d.key[:128], route=d.route, intent=d.intent[:64] or None)
        bind(message_id=d.message_id or None)
        try:
            return step(run)
        except WorkerError as exc:
            return _error_reply(run, exc)

    def _handle(self, run: _Run) -> Reply:
        try:
            admitted = self.admission.admit(run.delivery, run.received_at)
        except NotServed as exc:
            log.info("account %s is not served here; acked without a record", exc)
            return Reply(204, {})
        except Permanent as exc:
            return self._final(run, exc)
        pending = self._take_unfinished(admitted)
        if pending is not None:
            return self._finish(run, *pending)
        d = run.delivery
        claim = self.runs.claim(
            admitted.key, admitted.fingerprint, admitted.spec.name, _holder(), d.publish_time
        )
        if claim.kind is ClaimKind.MISMATCH:
            return self._mismatch(run, admitted.fingerprint)
        if claim.kind is ClaimKind.FINISHED:
            return self._replay(run, claim.record)
        if claim.lease is None:
            raise LeaseHeld("another delivery of this key is running; retry later")
        bind(attempt=claim.attempt)
        return self._execute(run, admitted, claim.lease)

    def _execute(self, run: _Run, admitted: Admitted, lease: Lease) -> Reply:
        stored = self.executor.run(admitted, lease, run.received_at)
        return self._finish(run, lease, stored)

    def _finish(self, run: _Run, lease: Lease, stored: dict[str, Any]) -> Reply:
        try:
            record = lease.finish(stored)
        except StoreUnavailable:
            self._keep_unfinished(run.key, lease, stored)
            raise
        except Exception as exc:  # e.g. Firestore refuses the result (size, text): keep a failure
            log.error("the outcome could not be stored", exc_info=exc)
            record = self._finish_unstorable(run, lease, stored, exc)
        if record is None:
            raise Superseded("another delivery took this key over; its outcome stands")
        return self._publish_and_reply(run, record["outcome"])

    def _finish_unstorable(
        self, run: _Run, lease: Lease, stored: dict[str, Any], exc: Exception
    ) -> dict[str, Any] | None:
        error = IntentFailed(f"the outcome could not be stored: {type(exc).__name__}")
        data = outcomes.data_of(stored)
        failed = self.outcomes.make(
            run.delivery, event_id=stored["id"], outcome="failed", received_at=run.received_at,
            attempt=lease.attempt, account=data.get("account") or "", error=error,
            legs=data.get("legs"),
        )  # fmt: skip
        try:
            return lease.finish(failed)
        except Exception:
            lease.release(f"outcome unstorable: {type(exc).__name__}")
            raise Retryable("the outcome could not be stored; will retry") from exc

    def _final(self, run: _Run, error: Permanent) -> Reply:
        """An outcome decided without running the intent: rejected, skipped, dead-lettered."""
        d, fp = run.delivery, fingerprint_of(run.delivery)

        def build(record: dict[str, Any] | None) -> dict[str, Any]:
            return self.outcomes.make(
                d, event_id=self.runs.doc_id(d.key), outcome=error.outcome,
                received_at=run.received_at, error=error,
                attempt=int((record or {}).get("attempt", 0)),
                legs=(record or {}).get("legs") or None,
            )  # fmt: skip

        claim = self.runs.record_final(d.key, fp, d.intent, build)
        if claim.kind is ClaimKind.MISMATCH:
            return self._mismatch(run, fp)
        if claim.kind is ClaimKind.FINISHED:
            return self._replay(run, claim.record)
        if claim.kind is ClaimKind.BUSY:
            raise LeaseHeld("this key is running right now; retry later")
        return self._publish_and_reply(run, claim.record["outcome"])

    def _mismatch(self, run: _Run, fp: str) -> Reply:
        """Same key, other content: refuse with an id of its own, never the old outcome."""
        error = KeyReused("idempotency key was already used with different intent/params")
        stored = self.outcomes.make(
            run.delivery, event_id=self.runs.mismatch_id(run.key, fp), outcome="rejected",
            received_at=run.received_at, error=error,
        )  # fmt: skip
        self.outbox.publish_only(stored)
        return _reply(run, stored, replayed=False)

    def _replay(self, run: _Run, record: dict[str, Any]) -> Reply:
        stored = record["outcome"]
        action = replay_of(record)
        if action is Replay.WAIT:
            raise LeaseHeld("the outcome of this key is being published; retry later")
        if action is Replay.PUBLISH:
            self.outbox.send(stored)  # its finisher failed or vanished before publishing
        log.info("replayed the stored %s outcome of this key", stored["outcome"])
        return _reply(run, stored, replayed=True)

    def _publish_and_reply(self, run: _Run, stored: dict[str, Any]) -> Reply:
        self.outbox.send(stored)
        log.info("outcome %s published", stored["outcome"])
        return _reply(run, stored, replayed=False)

    # -- outcomes whose finishing write failed ----------------------------------------------
    def _keep_unfinished(self, key: str, lease: Lease, stored: dict[str, Any]) -> None:
        with self._unfinished_lock:
            self._unfinished[key] = (lease, stored)
        log.warning("outcome kept in memory until Firestore takes it; the retry finishes it")

    def _take_unfinished(self, admitted: Admitted) -> tuple[Lease, dict[str, Any]] | None:
        with self._unfinished_lock:
            pending = self._unfinished.get(admitted.key)
            if pending is None or pending[0].record["fingerprint"] != admitted.fingerprint:
                return None  # other content under this key: the claim refuses it
            return self._unfinished.pop(admitted.key)


def _holder() -> str:
    return f"{_HOST}:{uuid.uuid4().hex[:12]}"


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
