"""A persistent IB session on a dedicated event-loop thread.

Concurrency contract: the IB library is touched only from the session's own thread, inside its
asyncio loop. Request threads (gunicorn gthread workers) never await anything themselves: they
hand a coroutine factory to ``call()``, which runs it on the loop and waits for the result with
a deadline. Nothing on the loop may block.

A run's calls share a ``CallScope``: when the run's lease is taken over, ``scope.cancel()``
cancels its calls in flight and refuses new ones (raising Superseded), so a superseded run
cannot send anything more. ``status()`` never touches the library: the loop thread publishes a
snapshot whenever the connection changes, and request threads read that.

Life cycle: ``start()`` launches the thread, which connects with full sync and keeps
reconnecting with bounded exponential backoff and jitter whenever the gateway is away (refused,
timed out, dropped socket, 326 client id in use). ``ready`` is True only when connected, synced
and not inside a 1100 connectivity loss. Calls in flight when the socket drops are cancelled at
once and reported as GatewayNotReady (retryable), instead of hanging until their deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from worker.broker import codes
from worker.broker.ib import LIBRARY, Gateway
from worker.errors import GatewayNotReady, IntentTimeout, Superseded

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Bounded exponential backoff with full jitter."""

    initial: float = 0.5
    cap: float = 15.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0.5, 1.0) * min(self.cap, self.initial * 2**attempt)  # noqa: S311


class CallScope:
    """The broker calls of one run, cancelled together when the run is superseded."""

    def __init__(self) -> None:
        self._futures: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()
        self.cancelled = False

    def add(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            if self.cancelled:
                future.cancel()
            self._futures.add(future)

    def discard(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)

    def cancel(self) -> None:
        """Cancel every call in flight and refuse later ones."""
        with self._lock:
            self.cancelled = True
            futures = list(self._futures)
        for future in futures:
            future.cancel()


class ScopedBroker:
    """The broker as one run sees it: its calls share a scope that a lost lease cancels."""

    def __init__(self, session: BrokerSession, scope: CallScope) -> None:
        self._session = session
        self.scope = scope

    def call(self, fn: Callable[[Gateway], Awaitable[T]], timeout: float) -> T:
        return self._session.call(fn, timeout, self.scope)

    def status(self) -> dict[str, Any]:
        return self._session.status()


class BrokerSession:
    """Owns one Gateway connection (one clientId) for the life of the worker process."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        connect_timeout: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._address = (host, port, client_id)
        self._connect_timeout = connect_timeout
        self._backoff = backoff or Backoff()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="ib-session", daemon=True)
        self._ready = threading.Event()
        self._stopping = False
        self._stop_lock = threading.Lock()
        self._gateway: Gateway | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._maintainer: concurrent.futures.Future[None] | None = None
        self._snapshot: dict[str, Any] = {"server_version": 0, "accounts": []}
        self.connects = 0  # successful connects so far (observability, tests, the journal)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        self._maintainer = asyncio.run_coroutine_threadsafe(self._maintain(), self._loop)

    def stop(self, timeout: float = 3.0) -> None:
        """Disconnect cleanly and end the thread (graceful shutdown; idempotent)."""
        with self._stop_lock:
            if self._stopping:
                return
            self._stopping = True
        log.info("stopping the IB session: calls in flight are handed back as retryable")
        self._ready.clear()
        if self._thread.is_alive():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            try:
                fut.result(timeout)
            except (concurrent.futures.TimeoutError, RuntimeError):
                log.warning("IB session did not shut down within %.1fs", timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def status(self) -> dict[str, Any]:
        """What /readyz reports (from the loop thread's snapshot; safe from any thread)."""
        ready = self.ready
        snapshot = self._snapshot
        return {
            "ready": ready,
            "library": LIBRARY,
            "connects": self.connects,
            "server_version": snapshot["server_version"],
            "accounts": list(snapshot["accounts"]) if ready else [],
        }

    def accounts_if_ready(self) -> list[str] | None:
        """The accounts the gateway manages, or None while it is not ready."""
        return list(self._snapshot["accounts"]) if self.ready else None

    # -- calls from request threads ---------------------------------------------------------
    def call(
        self,
        fn: Callable[[Gateway], Awaitable[T]],
        timeout: float,
        scope: CallScope | None = None,
    ) -> T:
        """Run ``fn(gateway)`` on the session loop and wait up to ``timeout`` seconds.

        Raises:
            GatewayNotReady: not connected/synced, or the connection dropped mid-call.
            IntentTimeout: the call did not finish in time (it is cancelled).
            Superseded: ``scope`` was cancelled because the run lost its lease.
        """
        if scope is not None and scope.cancelled:
            raise Superseded("this run was superseded; no further broker calls")
        gateway = self._gateway
        if not self.ready or gateway is None:
            raise GatewayNotReady("IB gateway session is not ready")
        future = asyncio.run_coroutine_threadsafe(self._tracked(fn(gateway)), self._loop)
        if scope is not None:
            scope.add(future)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise IntentTimeout(f"IB call did not finish within {timeout:.0f}s") from None
        except concurrent.futures.CancelledError:
            if scope is not None and scope.cancelled:
                raise Superseded("this run was superseded; its broker call was cancelled") from None
            raise GatewayNotReady("IB connection dropped during the call") from None
        except (ConnectionError, OSError) as exc:
            raise GatewayNotReady(f"IB connection error: {exc}") from None
        finally:
            if scope is not None:
                scope.discard(future)

    async def _tracked(self, coro: Awaitable[T]) -> T:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        try:
            return await task
        finally:
            self._inflight.discard(task)

    # -- the loop thread --------------------------------------------------------------------
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _maintain(self) -> None:
        attempt = 0
        while not self._stopping:
            # Order ids are never reused, even when the gateway's nextValidId moves backwards
            # after a restart: the new connection starts above every id the last one used.
            floor = self._gateway.order_id_floor if self._gateway else 0
            gateway = Gateway(order_id_floor=floor)
            lost = asyncio.Event()
            gateway.on_disconnect(lost.set)
            gateway.on_error(self._on_error)
            if await self._connect(gateway, attempt):
                attempt = 0
                await lost.wait()
                self._on_lost()
            else:
                await asyncio.sleep(self._backoff.delay(attempt))
                attempt += 1

    async def _connect(self, gateway: Gateway, attempt: int) -> bool:
        host, port, client_id = self._address
        try:
            await gateway.connect(host, port, client_id, self._connect_timeout)
        except Exception as exc:
            log.warning(
                "IB connect to %s:%s (clientId %s) failed, attempt %d: %s: %s",
                host,
                port,
                client_id,
                attempt + 1,
                type(exc).__name__,
                exc,
            )
            gateway.disconnect()
            return False
        self._gateway = gateway
        self._snapshot = {
            "server_version": gateway.server_version(),
            "accounts": tuple(gateway.accounts()),
        }
        self.connects += 1
        self._ready.set()
        log.info(
            "IB session ready: server version %s, accounts %s",
            gateway.server_version(),
            ",".join(gateway.accounts()),
        )
        return True

    def _on_lost(self) -> None:
        self._ready.clear()
        for task in list(self._inflight):
            task.cancel()
        if not self._stopping:
            log.warning("IB connection lost; reconnecting")

    def _on_error(self, req_id: int, code: int, message: str) -> None:
        kind = codes.classify(code)
        if kind is codes.Kind.CONNECTIVITY_LOST:
            self._ready.clear()
            log.warning("IB %s: %s; not ready until restored", code, message)
        elif kind is codes.Kind.RESTORED_DATA_KEPT:
            if self._gateway is not None and self._gateway.is_connected():
                self._ready.set()
            log.info("IB %s: %s; ready again", code, message)
        elif kind is codes.Kind.RESTORED_DATA_LOST and self._gateway is not None:
            # Subscriptions are gone: reconnecting resyncs everything in one well-tested path.
            log.warning("IB %s: %s; reconnecting to resync", code, message)
            self._gateway.disconnect()
        elif kind is not codes.Kind.INFORMATIONAL:
            log.info("IB error %s (reqId %s): %s", code, req_id, message)

    async def _shutdown(self) -> None:
        inflight = list(self._inflight)
        for task in inflight:
            task.cancel()
        # Let the cancellations reach the waiting request threads before the loop stops.
        await asyncio.gather(*inflight, return_exceptions=True)
        await asyncio.sleep(0)
        if self._maintainer is not None:
            self._maintainer.cancel()
        if self._gateway is not None:
            self._gateway.disconnect()
