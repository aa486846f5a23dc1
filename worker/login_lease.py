"""The login lease: at most one instance of a deployment logs in to IB at a time.

Two logins of one IB user fight, and IBC's own handler makes the NEW session lose (decisions.md,
"The gateway's life in the container"). During a rollout, and when Cloud Run briefly runs one
instance too many, two containers of one deployment run at once. So the handover is ordered here:
a starting container waits for the lease before it starts IBC, renews it while its gateway runs,
and releases it only after its gateway has stopped. start-gateway.sh drives this through
``ib-worker login-lease hold`` (one process for acquire, renew and release).

One Firestore document per deployment, ``login_leases/<deployment>``::

    holder        who holds it (revision, host and a random id: unique per container start)
    ttl_seconds   how long the lease lasts after the holder's last write
    released      true once the holder let go
    acquired_at, renewed_at, released_at   server timestamps, for people reading the record

Expiry is judged from the record's own timestamps, on the server's clock: the lease is free when
it was released, or when the snapshot's read time is past its update time plus ``ttl_seconds``.
Every write is a precondition write (``create()`` for the first, ``update()`` on the update time
the writer read for the rest), so of any number of contenders exactly one wins, and a holder
whose lease was taken over finds out at its next write.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as gexc
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import firestore

COLLECTION = "login_leases"
DEFAULT_TTL_SECONDS = 60.0
POLL_SECONDS = 2.0
WAIT_LOG_SECONDS = 30.0  # one "waiting" line per this many seconds, not one per poll
# Transient Firestore failures: retried until the caller's deadline, never taken as an answer.
TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.TooManyRequests,
    gexc.Unknown,
    gexc.Aborted,
)
log = logging.getLogger(__name__)


class LeaseError(Exception):
    """Root of the login lease's errors."""


class LeaseTimeout(LeaseError):
    """The lease stayed with another holder for longer than the caller would wait."""


class LeaseLost(LeaseError):
    """Another holder has the lease now (or it was released): stop the gateway."""


@dataclass(frozen=True)
class LeaseState:
    """What a reader saw: the current holder and whether the lease may be taken."""

    holder: str | None
    free: bool
    expires_in: float  # seconds after the read, by the server's clock; <= 0 when expired


def new_holder_id() -> str:
    """A holder id unique to this container start: revision, host name and a random part."""
    revision = os.environ.get("K_REVISION", "local")
    return f"{revision}/{socket.gethostname()}/{uuid.uuid4().hex[:12]}"


def _state(snapshot: Any) -> LeaseState:
    data = snapshot.to_dict() or {}
    holder = data.get("holder")
    ttl = float(data.get("ttl_seconds", 0))
    age = (snapshot.read_time - snapshot.update_time).total_seconds()
    released = bool(data.get("released")) or not holder
    return LeaseState(holder, released or age >= ttl, 0.0 if released else ttl - age)


class LoginLease:
    """The lease of one deployment's IB login, held under one holder id.

    Not thread-safe: one holder uses one instance from one thread (``hold`` renews from the
    thread that calls it).
    """

    def __init__(
        self,
        client: firestore.Client,
        deployment: str,
        holder: str,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        collection: str = COLLECTION,
    ) -> None:
        if not deployment or "/" in deployment:
            raise ValueError(f"a deployment name without '/' is required, got {deployment!r}")
        self.client = client
        self.doc = client.collection(collection).document(deployment)
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self._last_wait_log = -WAIT_LOG_SECONDS

    def _write_option(self, snapshot: Any) -> Any:
        return self.client.write_option(last_update_time=snapshot.update_time)

    def _claim_fields(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "ttl_seconds": self.ttl_seconds,
            "released": False,
            "acquired_at": firestore.SERVER_TIMESTAMP,
            "renewed_at": firestore.SERVER_TIMESTAMP,
        }

    def try_acquire(self) -> LeaseState | None:
        """One attempt. None when this holder has the lease now, else the state that blocked."""
        snapshot = self.doc.get()
        try:
            if not snapshot.exists:
                self.doc.create(self._claim_fields())
                return None
            state = _state(snapshot)
            if not (state.free or state.holder == self.holder):
                return state
            self.doc.update(self._claim_fields(), option=self._write_option(snapshot))
            return None
        except (gexc.Conflict, gexc.FailedPrecondition):
            # AlreadyExists (a Conflict) or a stale update time: another contender wrote first.
            return LeaseState(None, False, POLL_SECONDS)

    def acquire(
        self,
        wait: float | None = None,
        stop: threading.Event | None = None,
        on_wait: Callable[[LeaseState], None] | None = None,
    ) -> bool:
        """Take the lease, waiting up to ``wait`` seconds (None: as long as it takes).

        Returns:
            True once this holder has the lease; False when ``stop`` was set first.

        Raises:
            LeaseTimeout: another holder kept it for longer than ``wait``.
        """
        stop = stop or threading.Event()
        deadline = None if wait is None else time.monotonic() + wait
        while not stop.is_set():
            blocked = self._attempt()
            if blocked is None:
                log.info("login lease of %s acquired by %s", self.doc.id, self.holder)
                return True
            if on_wait is not None:
                on_wait(blocked)
            stop.wait(self._pause(blocked, deadline))
        return False

    def _attempt(self) -> LeaseState | None:
        try:
            return self.try_acquire()
        except TRANSIENT as exc:
            log.warning("login lease: Firestore unavailable (%s); trying again", exc)
            return LeaseState(None, False, POLL_SECONDS)

    def _pause(self, blocked: LeaseState, deadline: float | None) -> float:
        # Poll, but look again right when the holder's lease runs out.
        pause = min(POLL_SECONDS, max(blocked.expires_in, 0.05))
        if deadline is None:
            return pause
        left = deadline - time.monotonic()
        if left <= 0:
            raise LeaseTimeout(f"{self.doc.id}: still held by {blocked.holder}")
        return min(pause, left)

    def _own_snapshot(self) -> Any:
        snapshot = self.doc.get()
        state = _state(snapshot) if snapshot.exists else LeaseState(None, True, 0.0)
        if state.holder != self.holder or (snapshot.to_dict() or {}).get("released"):
            raise LeaseLost(f"{self.doc.id}: held by {state.holder}, not {self.holder}")
        return snapshot

    def renew(self) -> None:
        """Extend the lease by ``ttl_seconds`` from now.

        Raises:
            LeaseLost: someone else holds it now, or it was released.
        """
        for _ in range(3):
            snapshot = self._own_snapshot()
            fields = {"renewed_at": firestore.SERVER_TIMESTAMP, "ttl_seconds": self.ttl_seconds}
            try:
                self.doc.update(fields, option=self._write_option(snapshot))
                return
            except gexc.FailedPrecondition:
                continue  # written since we read it: read again (a takeover raises LeaseLost)
        raise LeaseLost(f"{self.doc.id}: the record keeps changing under {self.holder}")

    def release(self) -> bool:
        """Let go of the lease. False when this holder did not hold it (nothing to release)."""
        for _ in range(3):
            try:
                snapshot = self._own_snapshot()
            except LeaseLost:
                return False
            fields = {"released": True, "released_at": firestore.SERVER_TIMESTAMP}
            try:
                self.doc.update(fields, option=self._write_option(snapshot))
                log.info("login lease of %s released by %s", self.doc.id, self.holder)
                return True
            except gexc.FailedPrecondition:
                continue
        return False

    def hold(self, stop: threading.Event, ready: Callable[[], None] | None = None) -> None:
        """Acquire (waiting as long as it takes), call ``ready``, renew until ``stop`` is set,
        then release. A stop before the lease was won returns without holding it.

        Raises:
            LeaseLost: the lease was taken over, or renewals kept failing until it expired.
        """
        if not self.acquire(stop=stop, on_wait=self.log_wait):
            return
        if stop.is_set():  # won in the same moment the stop came: let go at once
            self.release()
            return
        if ready is not None:
            ready()
        renewed = time.monotonic()
        while not stop.wait(self.ttl_seconds / 3):
            try:
                self.renew()
                renewed = time.monotonic()
            except TRANSIENT as exc:
                # Keep the gateway while the lease can still be ours; give up before it expires.
                if time.monotonic() - renewed > self.ttl_seconds * 0.8:
                    raise LeaseLost(f"{self.doc.id}: no renewal for too long ({exc})") from exc
                log.warning("login lease: renewal failed (%s); trying again", exc)
        self.release()

    def log_wait(self, state: LeaseState) -> None:
        now = time.monotonic()
        if now - self._last_wait_log < WAIT_LOG_SECONDS:
            return
        self._last_wait_log = now
        log.info(
            "login lease of %s held by %s (free in %.0fs at most): waiting",
            self.doc.id,
            state.holder,
            max(state.expires_in, 0.0),
        )


def lease_from_env(holder: str | None = None, ttl_seconds: float | None = None) -> LoginLease:
    """The lease of this container's deployment, from the environment terraform sets:
    PROJECT_ID, FIRESTORE_DATABASE, DEPLOYMENT (or K_SERVICE), LOGIN_LEASE_HOLDER,
    LOGIN_LEASE_TTL."""
    project = os.environ.get("PROJECT_ID") or os.environ.get("GOOGLE_CLOUD_PROJECT")
    database = os.environ.get("FIRESTORE_DATABASE", "(default)")
    deployment = os.environ.get("DEPLOYMENT") or os.environ.get("K_SERVICE") or ""
    if not deployment:
        raise ValueError("no deployment name: DEPLOYMENT and K_SERVICE are unset")
    client = firestore.Client(project=project, database=database)
    return LoginLease(
        client,
        deployment,
        holder or os.environ.get("LOGIN_LEASE_HOLDER") or new_holder_id(),
        ttl_seconds or float(os.environ.get("LOGIN_LEASE_TTL", DEFAULT_TTL_SECONDS)),
    )


EX_TEMPFAIL = 75  # the lease is someone else's (lost, or not free in time)
EX_CONFIG = 78  # the environment does not say which deployment's lease


def command(action: str, wait: float | None = None) -> int:
    """``ib-worker login-lease ACTION``: acquire | hold | release. Returns the exit status.

    ``hold`` is what start-gateway.sh runs: it waits for the lease, prints ``acquired`` on
    stdout, renews until SIGTERM/SIGINT, then releases and exits 0; it exits 75 when the lease is
    lost (the gateway must stop). ``acquire`` and ``release`` are one-shot, for operators, with
    the holder id from LOGIN_LEASE_HOLDER.
    """
    logging.basicConfig(level=logging.INFO, format="login-lease: %(message)s")
    try:
        lease = lease_from_env()
    except (ValueError, DefaultCredentialsError) as exc:
        log.error("%s (outside Cloud Run: set DEPLOYMENT and credentials, or LOGIN_LEASE=off)", exc)
        return EX_CONFIG
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if action == "acquire":
            return 0 if lease.acquire(wait=wait, stop=stop, on_wait=lease.log_wait) else 1
        if action == "release":
            print("released" if lease.release() else "not held", flush=True)
            return 0
        lease.hold(stop, ready=lambda: print("acquired", flush=True))
        return 0
    except LeaseError as exc:
        log.error("%s", exc)
        return EX_TEMPFAIL
