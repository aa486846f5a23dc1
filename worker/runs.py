"""Idempotency records in Firestore: the whole state machine of a run, in one place.

One document per (deployment, key), id = sha256 of both (document ids may not contain '/', be
'.'/'..' or match ``__.*__``); the raw key is a field. Expiry is judged from the record's own
timestamps; the TTL policy on ``expires_at`` is only cleanup and may run days late.

States and transitions. Each transition is ONE write: a ``create()`` (fails if the document
exists) or an ``update()`` whose precondition is the update time of the version the writer last
saw, so nobody writes over a version they have not read (decisions.md, "The idempotency
record")::

    (none)  --claim: create-->                               RUNNING(holder, lease, attempt 1)
    (none)  --final: create-->                               FINISHED
    RUNNING, lease expired --takeover: get + update-->       RUNNING(new holder, attempt + 1)
    RUNNING, lease expired --final: get + update-->          FINISHED   (refused redelivery,
                                                                         dead letter)
    RUNNING(holder) --renew / plan / leg: update-->          RUNNING(holder)
    RUNNING(holder) --release: update-->                     RUNNING(lease ends now)
    RUNNING(holder) --finish: update-->                      FINISHED(published false)
    FINISHED(published false) --mark_published-->            FINISHED(published true)

FINISHED is one of SUCCEEDED, FAILED, REJECTED, SKIPPED, after the outcome's type. A holder
whose precondition fails re-reads the record: still RUNNING under its name means its own write
landed before the answer was lost, and it carries on; anything else means it was superseded. A
superseded ``Lease`` is ``lost``: its callbacks cancel the run's broker calls, it refuses every
further write (so no further order is journalled or sent) and its ``finish`` is a no-op.

Publish-once: whoever writes FINISHED publishes the outcome, then marks ``published``. A replay
that finds the outcome unpublished waits (``Replay.WAIT``) for ``PUBLISH_GRACE`` after
``finished_at`` unless the finisher marked ``publish_failed``; after that it publishes in the
finisher's place. Both sinks are idempotent (ce-id, BigQuery insertIds), so publishing twice
after a crash is harmless and publishing never is impossible.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_transient_error
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from worker.envelope import canonical_json, digest
from worker.errors import StoreUnavailable, Superseded
from worker.names import names

RUNNING = "RUNNING"
FINISHED_STATES = {
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "rejected": "REJECTED",
    "skipped": "SKIPPED",
}
TTL_FIELD = names()["firestore"]["ttl_field"]
PUBLISH_GRACE = timedelta(seconds=20)
# A lease is trusted locally only until this long before it expires in Firestore (at most a
# sixth of it), so a holder that was frozen (SIGSTOP, a long pause) cannot send an order after
# a taker started; the heartbeat renews every third of the lease, well inside that.
LEASE_MARGIN_SECONDS = 5.0
_CONTENDED_RETRIES = 3
log = logging.getLogger(__name__)
_UNAVAILABLE = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.RetryError,
    gexc.TooManyRequests,
    gexc.Unknown,
    gexc.Aborted,
)


class ClaimKind(enum.Enum):
    NEW = "new"  # we wrote the record (a claim holds the lease; a final holds the outcome)
    TAKEOVER = "takeover"  # an earlier holder's lease expired; we hold it now
    FINISHED = "finished"  # the key already has an outcome: replay it
    BUSY = "busy"  # another holder's lease is live: retry later
    MISMATCH = "mismatch"  # same key, different fingerprint: refuse


class Replay(enum.Enum):
    DONE = "done"  # the stored outcome was published
    PUBLISH = "publish"  # its finisher failed or vanished: publish it now
    WAIT = "wait"  # its finisher is publishing right now: retry later


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    doc_id: str
    record: dict[str, Any]
    lease: Lease | None = None  # set for NEW and TAKEOVER claims

    @property
    def attempt(self) -> int:
        return int(self.record.get("attempt", 0))


def fingerprint(intent: str, params: dict[str, Any], account: str | None, dry_run: bool) -> str:
    """Hash of what the delivery asks for: intent, params and behaviour-changing options."""
    body = {"intent": intent, "params": params, "account": account, "dry_run": dry_run}
    return digest(canonical_json(body))


def now() -> datetime:
    return datetime.now(UTC)


def replay_of(record: dict[str, Any]) -> Replay:
    """What a redelivery of a FINISHED record must do about its publication."""
    if record.get("published"):
        return Replay.DONE
    finished = record.get("finished_at")
    overdue = finished is None or now() - finished > PUBLISH_GRACE
    return Replay.PUBLISH if record.get("publish_failed") or overdue else Replay.WAIT


def _judge(record: dict[str, Any], fp: str) -> ClaimKind:
    if record.get("fingerprint") != fp:
        return ClaimKind.MISMATCH
    if record.get("state") != RUNNING:
        return ClaimKind.FINISHED
    lease = record.get("lease_expires_at")
    return ClaimKind.BUSY if lease and lease > now() else ClaimKind.TAKEOVER


class RunStore:
    """The idempotency records of one deployment.

    Thread-safe: every method is a self-contained Firestore call; writes of one held run go
    through its ``Lease``.
    """

    def __init__(
        self,
        client: firestore.Client,
        collection: str,
        deployment: str,
        lease_seconds: float,
        retention: timedelta,
        retry_timeout: float = 8.0,
    ) -> None:
        self._client = client
        self._collection = client.collection(collection)
        self.deployment = deployment
        self.lease_seconds = lease_seconds
        self.trusted_seconds = lease_seconds - min(LEASE_MARGIN_SECONDS, lease_seconds / 6)
        self._retention = retention
        self._retry = Retry(
            predicate=if_transient_error, initial=0.1, maximum=1.0, timeout=retry_timeout
        )
        self._rpc_timeout = min(5.0, retry_timeout)

    def doc_id(self, key: str) -> str:
        """Document id and outcome event id of a key: hash(deployment, key)."""
        return digest(self.deployment, key)

    def mismatch_id(self, key: str, fp: str) -> str:
        """Outcome id for a refused key reuse, distinct from the original's (decisions.md)."""
        return digest(self.deployment, key, fp)

    def claim(
        self, key: str, fp: str, intent: str, holder: str, published: datetime | None = None
    ) -> Claim:
        """Claim ``key`` for ``holder``, or say why not (see ``ClaimKind``).

        ``published`` (the message's publish time) is kept so a dead letter, which arrives
        with a new message id, can find the record of a key that was its message id.
        """
        doc_id = self.doc_id(key)
        record = {**self._new_record(key, fp, intent, holder), "publish_time": published}
        try:
            written = self.call(self._ref(doc_id).create, record)
        except gexc.AlreadyExists:
            return self._claim_existing(doc_id, fp, holder)
        return Claim(ClaimKind.NEW, doc_id, record, self._lease(doc_id, record, written))

    def record_final(
        self, key: str, fp: str, intent: str, build: Callable[[dict[str, Any] | None], dict]
    ) -> Claim:
        """Store an outcome decided without running the intent (rejected, skipped, dead letter).

        ``build(record)`` makes the stored outcome; it gets the abandoned RUNNING record when
        one is finished this way (so the outcome can carry the legs it had sent), else None.
        NEW means this call wrote the outcome and must publish it.
        """
        doc_id = self.doc_id(key)
        stored = build(None)
        record = {**self._new_record(key, fp, intent, "final"), **self._finished(stored)}
        try:
            self.call(self._ref(doc_id).create, record)
            return Claim(ClaimKind.NEW, doc_id, record)
        except gexc.AlreadyExists:
            pass
        for _ in range(_CONTENDED_RETRIES):
            snapshot = self.call(self._ref(doc_id).get)
            current = snapshot.to_dict() or {}
            kind = _judge(current, fp)
            if kind is not ClaimKind.TAKEOVER:
                return Claim(kind, doc_id, current)
            fields = {**self._finished(build(current)), "holder": "final"}
            try:
                self.call(self._ref(doc_id).update, fields, self._since(snapshot.update_time))
            except gexc.FailedPrecondition:
                continue  # someone moved first: judge their version
            return Claim(ClaimKind.NEW, doc_id, {**current, **fields})
        raise StoreUnavailable("the record kept changing under us; retry later")

    def find_key(self, fp: str, published: datetime) -> str | None:
        """The key of this deployment's record of the message published at ``published``
        with fingerprint ``fp`` (equality filters only: no composite index needed)."""
        query = (
            self._collection.where(filter=FieldFilter("fingerprint", "==", fp))
            .where(filter=FieldFilter("publish_time", "==", published))
            .where(filter=FieldFilter("deployment", "==", self.deployment))
            .limit(2)
        )
        keys = [snap.get("key") for snap in self.call(query.get)]
        if len(keys) > 1:
            log.warning("two records share a fingerprint and publish time; using the first")
        return keys[0] if keys else None

    def mark_published(self, doc_id: str) -> None:
        self.call(self._ref(doc_id).update, {"published": True})

    def mark_publish_failed(self, doc_id: str) -> None:
        """Best effort: tell replays not to wait for this finisher."""
        try:
            self.call(self._ref(doc_id).update, {"publish_failed": True})
        except StoreUnavailable:
            log.warning("could not mark a failed publish; replays wait for the grace instead")

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of ``key`` (dead letters, tests, operators)."""
        snapshot = self.call(self._ref(self.doc_id(key)).get)
        return snapshot.to_dict() if snapshot.exists else None

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """One Firestore call with our bounded retry (replacing the client's own, which may
        retry for a minute); an outage becomes StoreUnavailable."""
        try:
            return fn(*args, retry=self._retry, timeout=self._rpc_timeout)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"Firestore unavailable: {type(exc).__name__}") from exc

    def field_path(self, *parts: str) -> str:
        return self._client.field_path(*parts)

    # -- internals -------------------------------------------------------------------------
    def _ref(self, doc_id: str) -> firestore.DocumentReference:
        return self._collection.document(doc_id)

    def _since(self, update_time: Any) -> Any:
        return self._client.write_option(last_update_time=update_time)

    def _new_record(self, key: str, fp: str, intent: str, holder: str) -> dict[str, Any]:
        at = now()
        return {
            "key": key,
            "deployment": self.deployment,
            "intent": intent,
            "fingerprint": fp,
            "state": RUNNING,
            "holder": holder,
            "lease_expires_at": at + timedelta(seconds=self.lease_seconds),
            "attempt": 1,
            "legs": {},
            "recovery_point": None,
            "outcome": None,
            "published": False,
            "created_at": at,
            "finished_at": None,
            TTL_FIELD: at + self._retention,
        }

    def _finished(self, outcome: dict[str, Any]) -> dict[str, Any]:
        at = now()
        return {
            "state": FINISHED_STATES[outcome["outcome"]],
            "outcome": outcome,
            "finished_at": at,
            "lease_expires_at": None,
            "published": False,
            TTL_FIELD: at + self._retention,
        }

    def _claim_existing(self, doc_id: str, fp: str, holder: str) -> Claim:
        for _ in range(_CONTENDED_RETRIES):
            snapshot = self.call(self._ref(doc_id).get)
            record = snapshot.to_dict() or {}
            kind = _judge(record, fp)
            if kind is not ClaimKind.TAKEOVER:
                return Claim(kind, doc_id, record)
            fields = {
                "holder": holder,
                "attempt": int(record.get("attempt", 0)) + 1,
                "lease_expires_at": now() + timedelta(seconds=self.lease_seconds),
            }
            try:
                written = self.call(
                    self._ref(doc_id).update, fields, self._since(snapshot.update_time)
                )
            except gexc.FailedPrecondition:
                continue  # another taker won this version; judge theirs
            record = {**record, **fields}
            return Claim(ClaimKind.TAKEOVER, doc_id, record, self._lease(doc_id, record, written))
        return Claim(ClaimKind.BUSY, doc_id, {})

    def _lease(self, doc_id: str, record: dict[str, Any], written: Any) -> Lease:
        return Lease(self, doc_id, record, written.update_time, time.monotonic())


class Lease:
    """This process's hold on one RUNNING record, and the only way to write to it.

    Every write carries the update time of the version this holder last wrote (or read), so a
    write after a takeover fails instead of overwriting the taker. Writes are serialized by a
    lock because the heartbeat thread and the run's thread both write.
    """

    def __init__(
        self,
        store: RunStore,
        doc_id: str,
        record: dict[str, Any],
        version: Any,
        renewed_at: float,
    ) -> None:
        self.store = store
        self.doc_id = doc_id
        self.record = record
        self.holder: str = record["holder"]
        self.attempt = int(record.get("attempt", 1))
        self.lost = threading.Event()
        self._version = version
        self._trusted_until = renewed_at + store.trusted_seconds
        self._lock = threading.Lock()
        self._on_lost: list[Callable[[], None]] = []
        self._finished = False

    # -- what a run asks -----------------------------------------------------------------
    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when another holder supersedes this one."""
        self._on_lost.append(callback)
        if self.lost.is_set():
            callback()

    def check(self) -> None:
        """Raise Superseded unless this lease is held and locally trusted right now."""
        self._check_not_lost()
        if time.monotonic() > self._trusted_until:
            raise Superseded("the lease could not be renewed in time; this run stops")

    def write(self, fields: dict[str, Any]) -> None:
        """Write ``fields`` to the record if it is still ours (raises Superseded if not)."""
        with self._lock:
            self._write(fields)

    # -- transitions -----------------------------------------------------------------------
    def renew(self) -> None:
        """Extend the lease (the heartbeat); raises Superseded when it was taken over."""
        started = time.monotonic()
        self.write({"lease_expires_at": now() + timedelta(seconds=self.store.lease_seconds)})
        self._trusted_until = started + self.store.trusted_seconds

    def release(self, reason: str) -> None:
        """A retryable failure: end the lease now so the redelivery can take over at once."""
        self._trusted_until = 0.0
        if self._finished:
            return  # the record carries its outcome: nothing is held
        with contextlib.suppress(Superseded):  # someone else holds it: nothing of ours to end
            self.write({"lease_expires_at": now(), "last_error": reason[:500]})

    def finish(self, outcome: dict[str, Any]) -> dict[str, Any] | None:
        """Store the outcome; the record as it now stands, or None when superseded."""
        fields = self.store._finished(outcome)
        try:
            self.write(fields)
        except Superseded:
            return None
        self._finished = True
        self._trusted_until = 0.0
        return {**self.record, **fields}

    # -- internals -------------------------------------------------------------------------
    def _write(self, fields: dict[str, Any]) -> None:
        self._check_not_lost()
        ref = self.store._ref(self.doc_id)
        for _ in range(2):
            try:
                written = self.store.call(ref.update, fields, self.store._since(self._version))
            except (gexc.FailedPrecondition, gexc.NotFound):
                self._resync()  # raises Superseded unless the record is still ours
                continue
            self._version = written.update_time
            self.record = {**self.record, **fields}
            return
        self._lose()
        raise Superseded("the record keeps changing under this holder; this run stops")

    def _check_not_lost(self) -> None:
        if self.lost.is_set():
            raise Superseded("another delivery took this key over; this run stops")

    def _resync(self) -> None:
        """After a failed precondition: our own earlier write may have landed unanswered."""
        snapshot = self.store.call(self.store._ref(self.doc_id).get)
        record = snapshot.to_dict() or {}
        if record.get("holder") == self.holder and record.get("state") == RUNNING:
            self._version = snapshot.update_time
            return
        self._lose()
        raise Superseded("another delivery took this key over; this run stops")

    def _lose(self) -> None:
        if self.lost.is_set():
            return
        self.lost.set()
        log.error("the lease of this key was taken over: cancelling this run")
        for callback in self._on_lost:
            try:
                callback()
            except Exception:  # a failing callback must not stop the others
                log.exception("lease-lost callback failed")
