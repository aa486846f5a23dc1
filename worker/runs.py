"""Idempotency records in Firestore: claim, lease, finish, release, replay.

One document per (deployment, key), id = sha256 of both (document ids may not contain '/', be
'.'/'..' or match ``__.*__``), raw key kept as a field. The first claim is a ``create()``
(fails if the document exists), which avoids transaction contention when twenty copies of a
message arrive at once; takeover of an expired lease and finishing are transactions
(decisions.md, "The idempotency record"). Expiry is judged from the record's own timestamps;
the TTL policy on ``expires_at`` is only cleanup, it may run days late.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_transient_error
from google.cloud import firestore

from worker.envelope import canonical_json, digest
from worker.errors import StoreUnavailable, WorkerError
from worker.names import names

RUNNING = "RUNNING"
FINISHED_STATES = {
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "rejected": "REJECTED",
    "skipped": "SKIPPED",
}
TTL_FIELD = names()["firestore"]["ttl_field"]
log = logging.getLogger(__name__)
_RETRY = Retry(predicate=if_transient_error, initial=0.1, maximum=1.0, multiplier=2, timeout=8.0)
_UNAVAILABLE = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.RetryError,
    gexc.TooManyRequests,
    gexc.Unknown,
)


class ClaimKind(enum.Enum):
    NEW = "new"  # we created the record and hold the lease
    TAKEOVER = "takeover"  # an earlier holder's lease expired; we hold it now
    FINISHED = "finished"  # the key already has an outcome: replay it
    BUSY = "busy"  # another holder's lease is live: retry later
    MISMATCH = "mismatch"  # same key, different fingerprint: refuse


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    doc_id: str
    holder: str
    record: dict[str, Any]

    @property
    def attempt(self) -> int:
        return int(self.record.get("attempt", 0))


def fingerprint(intent: str, params: dict[str, Any], account: str | None, dry_run: bool) -> str:
    """Hash of what the delivery asks for: intent, params and behaviour-changing options."""
    body = {"intent": intent, "params": params, "account": account, "dry_run": dry_run}
    return digest(canonical_json(body))


def now() -> datetime:
    return datetime.now(UTC)


class RunStore:
    """The idempotency records of one deployment.

    Thread-safe: every method is a self-contained Firestore call or transaction.
    """

    def __init__(
        self,
        client: firestore.Client,
        collection: str,
        deployment: str,
        lease_seconds: float,
        retention: timedelta,
    ) -> None:
        self._client = client
        self._collection = client.collection(collection)
        self._deployment = deployment
        self._lease = timedelta(seconds=lease_seconds)
        self._retention = retention

    def doc_id(self, key: str) -> str:
        """Document id and outcome event id of a key: hash(deployment, key)."""
        return digest(self._deployment, key)

    def mismatch_id(self, key: str, fp: str) -> str:
        """Outcome id for a refused key reuse, distinct from the original's (decisions.md)."""
        return digest(self._deployment, key, fp)

    def claim(self, key: str, fp: str, intent: str, holder: str) -> Claim:
        """Claim ``key`` for ``holder``, or say why not (see ``ClaimKind``)."""
        doc_id = self.doc_id(key)
        record = self._new_record(key, fp, intent, holder)
        try:
            self._call(self._collection.document(doc_id).create, record)
            return Claim(ClaimKind.NEW, doc_id, holder, record)
        except gexc.AlreadyExists:
            return self._call(self._claim_existing, doc_id, fp, holder)

    def record_final(self, key: str, fp: str, intent: str, outcome: dict[str, Any]) -> Claim:
        """Store an outcome decided without a run (rejected, skipped); an existing record wins."""
        doc_id = self.doc_id(key)
        record = {**self._new_record(key, fp, intent, "edge"), **self._finished_fields(outcome)}
        try:
            self._call(self._collection.document(doc_id).create, record)
            return Claim(ClaimKind.NEW, doc_id, "edge", record)
        except gexc.AlreadyExists:
            existing = self._call(self._get, doc_id)
            if existing.get("fingerprint") != fp:
                return Claim(ClaimKind.MISMATCH, doc_id, "edge", existing)
            return Claim(ClaimKind.FINISHED, doc_id, "edge", existing)

    def renew(self, claim: Claim) -> bool:
        """Extend the lease while the run lives; False if someone else took the key over."""
        return self._call(
            self._transact, claim, lambda rec: {"lease_expires_at": now() + self._lease}
        )

    def release(self, claim: Claim, reason: str) -> None:
        """A retryable failure: end the lease now so the redelivery can take over at once."""
        self._call(
            self._transact,
            claim,
            lambda rec: {"lease_expires_at": now(), "last_error": reason[:500]},
        )

    def finish(self, claim: Claim, outcome: dict[str, Any]) -> dict[str, Any]:
        """Store the outcome (state from its type); returns the record as it now stands."""
        fields = self._finished_fields(outcome)
        if not self._call(self._transact, claim, lambda rec: fields):
            return self._call(self._get, claim.doc_id)  # taken over meanwhile: theirs stands
        return {**claim.record, **fields}

    def mark_published(self, doc_id: str) -> None:
        self._call(self._collection.document(doc_id).update, {"published": True})

    def mark_publish_failed(self, doc_id: str) -> None:
        """Best effort: tell replays not to wait for this finisher (see pipeline)."""
        try:
            self._call(self._collection.document(doc_id).update, {"publish_failed": True})
        except StoreUnavailable:
            log.warning("could not mark a failed publish; replays wait for the grace instead")

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of ``key`` (tests, operators)."""
        snapshot = self._call(self._collection.document(self.doc_id(key)).get)
        return snapshot.to_dict() if snapshot.exists else None

    # -- internals -------------------------------------------------------------------------
    def _new_record(self, key: str, fp: str, intent: str, holder: str) -> dict[str, Any]:
        at = now()
        return {
            "key": key,
            "deployment": self._deployment,
            "intent": intent,
            "fingerprint": fp,
            "state": RUNNING,
            "holder": holder,
            "lease_expires_at": at + self._lease,
            "attempt": 1,
            "legs": [],
            "recovery_point": None,
            "outcome": None,
            "published": False,
            "created_at": at,
            "finished_at": None,
            TTL_FIELD: at + self._retention,
        }

    def _finished_fields(self, outcome: dict[str, Any]) -> dict[str, Any]:
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
        ref = self._collection.document(doc_id)

        @firestore.transactional
        def run(tx: firestore.Transaction) -> Claim:
            record = ref.get(transaction=tx).to_dict() or {}
            kind = self._judge(record, fp)
            if kind is ClaimKind.TAKEOVER:
                record = {
                    **record,
                    "holder": holder,
                    "attempt": record.get("attempt", 0) + 1,
                    "lease_expires_at": now() + self._lease,
                }
                tx.update(ref, {k: record[k] for k in ("holder", "attempt", "lease_expires_at")})
            return Claim(kind, doc_id, holder, record)

        return run(self._client.transaction())

    @staticmethod
    def _judge(record: dict[str, Any], fp: str) -> ClaimKind:
        if record.get("fingerprint") != fp:
            return ClaimKind.MISMATCH
        if record.get("state") != RUNNING:
            return ClaimKind.FINISHED
        lease = record.get("lease_expires_at")
        return ClaimKind.BUSY if lease and lease > now() else ClaimKind.TAKEOVER

    def _transact(self, claim: Claim, change: Any) -> bool:
        """Apply ``change(record)`` if ``claim.holder`` still holds the RUNNING record."""
        ref = self._collection.document(claim.doc_id)

        @firestore.transactional
        def run(tx: firestore.Transaction) -> bool:
            record = ref.get(transaction=tx).to_dict() or {}
            if record.get("holder") != claim.holder or record.get("state") != RUNNING:
                return False
            tx.update(ref, change(record))
            return True

        return run(self._client.transaction())

    def _get(self, doc_id: str) -> dict[str, Any]:
        return self._collection.document(doc_id).get().to_dict() or {}

    @staticmethod
    def _call(fn: Any, *args: Any) -> Any:
        try:
            return _RETRY(fn)(*args)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"Firestore unavailable: {type(exc).__name__}") from exc


class Heartbeat:
    """Renews the lease every ``interval`` seconds while the run lives."""

    def __init__(self, runs: RunStore, claim: Claim, interval: float) -> None:
        self._runs, self._claim, self._interval = runs, claim, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="lease-heartbeat")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if not self._runs.renew(self._claim):
                    log.error("lease of this key was taken over while running")
                    return
            except WorkerError as exc:
                log.warning("lease renewal failed: %s", exc.message)
