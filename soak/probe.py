"""Our own client connection to ibsim: what the broker holds, asked independently of the worker.

The reconciler must not trust the code it checks, so this module talks to ibsim with the IB
client library directly (not through ``worker.broker``): all clients' open orders, completed
orders and executions, each answered completely (with its end marker) or not at all.

Concurrency contract: the library lives on this probe's own event-loop thread; callers on any
thread get plain data back from ``call``-style methods with a deadline. A connection dropped by
a gateway fault is reopened on the next call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

try:  # the same preference as worker/broker/ib.py
    import ib_async as iblib
    from ib_async.ib import StartupFetch
except ImportError:  # pragma: no cover - the ib_insync virtualenv does not run the soak
    import ib_insync as iblib  # type: ignore[no-redef]

    StartupFetch = None  # type: ignore[assignment,misc]

PROBE_CLIENT_ID = 90  # far from the worker's ids (1); one id, one probe
CONNECT_TIMEOUT_S = 5.0
T = TypeVar("T")


@dataclass(frozen=True)
class BrokerOrder:
    """One trace of an order at the broker.

    Attributes:
        order_ref: The orderRef the order carries (``ibw:<hash>:<leg>`` for the worker's).
        perm_id: IB's permanent id: one per order, stable across restarts.
        client_id: The API client that placed it.
        order_id: Its order id (per client; ids roll back, so never used for identity).
        status: Its status, or "Filled" for a trace seen only as an execution.
        source: open, completed or execution.
    """

    order_ref: str
    perm_id: int
    client_id: int
    order_id: int
    status: str
    source: str


class BrokerProbe:
    """A client of ibsim (clientId 90) on a thread of its own."""

    def __init__(self, host: str, port: int, client_id: int = PROBE_CLIENT_ID) -> None:
        self._address = (host, port, client_id)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="broker-probe", daemon=True)
        self._ib: Any = None

    def start(self) -> BrokerProbe:
        self._thread.start()
        return self

    def close(self) -> None:
        """Disconnect and end the thread (idempotent)."""
        if not self._thread.is_alive():
            return
        self._call(self._disconnect, 5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def open_orders(self, wait: float = 3.0) -> list[BrokerOrder]:
        """All clients' working orders (reqAllOpenOrders)."""
        return self._call(lambda: self._open(), wait)

    def all_orders(self, wait: float = 15.0) -> list[BrokerOrder]:
        """Every trace: open orders, completed orders (not API-only) and executions."""

        async def everything() -> list[BrokerOrder]:
            return [*await self._open(), *await self._completed(), *await self._fills()]

        return self._call(everything, wait)

    # -- the loop thread -------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, make: Callable[[], Awaitable[T]], wait: float) -> T:
        """Run ``make()`` on the loop within ``wait`` seconds (TimeoutError otherwise)."""

        async def bounded() -> T:
            return await asyncio.wait_for(make(), wait)

        return asyncio.run_coroutine_threadsafe(bounded(), self._loop).result(wait + 1.0)

    async def _client(self) -> Any:
        if self._ib is not None and self._ib.isConnected():
            return self._ib
        await self._disconnect()
        ib = iblib.IB()
        ib.RaiseRequestErrors = True
        host, port, client_id = self._address
        extra = {"fetchFields": StartupFetch(0)} if StartupFetch is not None else {}
        await ib.connectAsync(host, port, clientId=client_id, timeout=CONNECT_TIMEOUT_S, **extra)
        self._ib = ib
        return ib

    async def _disconnect(self) -> None:
        if self._ib is not None:
            self._ib.disconnect()
            self._ib = None

    async def _open(self) -> list[BrokerOrder]:
        trades = await (await self._client()).reqAllOpenOrdersAsync()
        return [_order(t, "open") for t in trades]

    async def _completed(self) -> list[BrokerOrder]:
        trades = await (await self._client()).reqCompletedOrdersAsync(False)
        return [_order(t, "completed") for t in trades]

    async def _fills(self) -> list[BrokerOrder]:
        fills = await (await self._client()).reqExecutionsAsync(iblib.ExecutionFilter())
        return [
            BrokerOrder(
                f.execution.orderRef or "",
                int(f.execution.permId),
                int(f.execution.clientId),
                int(f.execution.orderId),
                "Filled",
                "execution",
            )
            for f in fills
        ]


def _order(trade: Any, source: str) -> BrokerOrder:
    order = trade.order
    return BrokerOrder(
        order.orderRef or "",
        int(order.permId),
        int(order.clientId),
        int(order.orderId),
        trade.orderStatus.status,
        source,
    )
