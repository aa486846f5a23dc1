"""Running one admitted intent under its lease, and turning what happened into an outcome.

The run gets a ``Context``: its key and attempt, a broker view whose calls are cancelled when
the lease is lost, and the order journal (the only way out for orders). A heartbeat renews the
lease meanwhile. The verdict is a stored outcome (succeeded, or a permanent failure), or a
retry: the lease is then released so the redelivery can take over at once, or it was lost
(``Superseded``) and belongs to someone else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from worker.admission import Admitted
from worker.broker.session import CallScope, ScopedBroker
from worker.config import Settings
from worker.errors import IntentFailed, Permanent, Retryable, Superseded, WorkerError
from worker.holdings import Books
from worker.intents import Context
from worker.journal import OrderJournal
from worker.outcomes import Factory
from worker.recording import Recorder
from worker.runs import Lease

log = logging.getLogger(__name__)
MAX_ATTEMPTS_FOR_BUGS = 3  # an unexpected exception is retried, then reported as failed


class Executor:
    """Runs intents for the pipeline; one instance per worker process, thread-safe."""

    def __init__(
        self,
        settings: Settings,
        session: Any,
        config: Callable[[], dict[str, Any]],
        account_for: Callable[[str | None], str],
        outcomes: Factory,
        books: Books | None = None,
        rows: Recorder | None = None,
    ) -> None:
        self._settings = settings
        self._session = session
        self._config = config
        self._account_for = account_for
        self._outcomes = outcomes
        self._books = books
        self._rows = rows

    def run(self, admitted: Admitted, lease: Lease, received_at: datetime) -> dict[str, Any]:
        """The stored outcome of running ``admitted`` on ``lease``.

        Raises:
            Retryable: try again later (the lease was released first).
            Superseded: another holder has the key now; nothing of ours to store.
        """
        verdict = _Verdict(self._outcomes, admitted, lease, received_at)
        try:
            verdict.account = self._account_for(admitted.delivery.options.account)
            broker = _scoped(self._session, lease)
            with Heartbeat(lease, self._settings.lease_seconds / 3):
                verdict.journal = self._journal(admitted, lease, broker, verdict.account)
                ctx = self._context(admitted, lease, broker, verdict)
                return verdict.outcome("succeeded", result=admitted.spec.run(ctx, admitted.params))
        except Superseded:
            raise
        except Retryable as exc:
            lease.release(exc.message)
            raise
        except Permanent as exc:
            return verdict.outcome(exc.outcome, error=exc)
        except Exception as exc:
            return verdict.bug(exc)

    def _journal(
        self, admitted: Admitted, lease: Lease, broker: ScopedBroker, account: str
    ) -> OrderJournal:
        connects = self._session.connects
        return OrderJournal(
            lease,
            broker,
            key=admitted.key,
            account=account,
            dry_run=admitted.delivery.options.dry_run,
            reconnected=lambda: self._session.connects != connects,
            timeout=self._settings.intent_timeout_seconds,
            ack_seconds=self._settings.order_ack_seconds,
            search_seconds=self._settings.order_search_seconds,
        )

    def _context(
        self, admitted: Admitted, lease: Lease, broker: ScopedBroker, verdict: _Verdict
    ) -> Context:
        return Context(
            broker=broker,
            account=verdict.account,
            dry_run=admitted.delivery.options.dry_run,
            trading_mode=self._settings.trading_mode,
            timeout=self._settings.intent_timeout_seconds,
            config=self._config,
            key=admitted.key,
            attempt=lease.attempt,
            orders=verdict.journal,
            books=self._books,
            rows=self._rows,
        )


class _Verdict:
    """What one run produced so far, and how it becomes a stored outcome."""

    def __init__(
        self, outcomes: Factory, admitted: Admitted, lease: Lease, received_at: datetime
    ) -> None:
        self._outcomes = outcomes
        self._admitted = admitted
        self._lease = lease
        self._received_at = received_at
        self._started_at = datetime.now(UTC)
        self.account = ""
        self.journal: OrderJournal | None = None

    def outcome(self, kind: str, **body: Any) -> dict[str, Any]:
        return self._outcomes.make(
            self._admitted.delivery,
            event_id=self._lease.doc_id,
            outcome=kind,
            received_at=self._received_at,
            started_at=self._started_at,
            attempt=self._lease.attempt,
            account=self.account,
            legs=self.journal.legs if self.journal else None,
            **body,
        )

    def bug(self, exc: Exception) -> dict[str, Any]:
        """An unexpected exception: retried while the budget lasts, then a failed outcome."""
        log.error("intent %s raised unexpectedly", self._admitted.spec.name, exc_info=exc)
        attempt = self._lease.attempt
        if attempt < MAX_ATTEMPTS_FOR_BUGS:
            self._lease.release(repr(exc))
            raise Retryable(f"internal error ({type(exc).__name__}); will retry") from exc
        error = IntentFailed(f"internal error after {attempt} attempts: {type(exc).__name__}")
        return self.outcome("failed", error=error)


def _scoped(session: Any, lease: Lease) -> ScopedBroker:
    """The run's view of the broker: losing the lease cancels its calls (CallScope)."""
    scope = CallScope()
    lease.on_lost(scope.cancel)
    return ScopedBroker(session, scope)


class Heartbeat:
    """Renews a lease every ``interval`` seconds while the run lives."""

    def __init__(self, lease: Lease, interval: float) -> None:
        self._lease, self._interval = lease, interval
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
                self._lease.renew()
            except Superseded:
                return
            except WorkerError as exc:
                log.warning("lease renewal failed: %s", exc.message)
