"""The ONLY module of the worker that imports the IB client library.

ib_async is preferred; ib_insync (same API, last released 2023) works as a fallback so users can
pin either. Everything leaving this module is plain data (dicts, lists, str, float), so no
other module depends on the library's types. All methods are coroutines for the session's
event-loop thread (``session.py``); they must never block that loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from worker.broker import codes
from worker.errors import ContractNotFound, OrderStateUnknown

try:  # pragma: no cover - which branch runs depends on the virtualenv
    import ib_async as iblib
except ImportError:  # pragma: no cover
    import ib_insync as iblib  # type: ignore[no-redef]


LIBRARY = f"{iblib.__name__} {getattr(iblib, '__version__', '?')}"
LIVE = codes.LIVE_STATUSES
TERMINAL = codes.TERMINAL_STATUSES
POLL_SECONDS = 0.02
CONTRACT_FIELDS = {
    "con_id": "conId",
    "symbol": "symbol",
    "sec_type": "secType",
    "exchange": "exchange",
    "primary_exchange": "primaryExchange",
    "currency": "currency",
    "last_trade_date": "lastTradeDateOrContractMonth",
    "multiplier": "multiplier",
    "local_symbol": "localSymbol",
}


def _num(value: Any) -> float | None:
    """IB's unset numbers (NaN, 1.79e308) become None so they serialise as JSON null."""
    if not isinstance(value, int | float) or math.isnan(value) or abs(value) > 1e300:
        return None
    return float(value)


def _contract(c: Any) -> dict[str, Any]:
    return {
        "con_id": c.conId,
        "symbol": c.symbol,
        "sec_type": c.secType,
        "currency": c.currency,
        "exchange": c.exchange or c.primaryExchange,
        "local_symbol": c.localSymbol,
        "multiplier": c.multiplier or "",
        "last_trade_date": c.lastTradeDateOrContractMonth,
    }


def _to_contract(spec: dict[str, Any]) -> Any:
    """Our plain contract spec (see CONTRACT_FIELDS) as the library's Contract."""
    return iblib.Contract(**{CONTRACT_FIELDS[k]: v for k, v in spec.items() if v not in (None, "")})


def _rejection(trade: Any) -> tuple[int, str] | None:
    """The IB error that refused a new order, if any (codes.Kind.REJECTED, e.g. 201, 103)."""
    for entry in trade.log:
        code = getattr(entry, "errorCode", 0)
        if code and codes.classify(code) in (codes.Kind.REJECTED, codes.Kind.NOT_FOUND):
            return code, entry.message
    return None


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


class Gateway:
    """One IB client connection and the read/trade operations intents need.

    Keyed library requests (account updates for one account, open orders, executions) are
    serialized with one asyncio lock per key: concurrent identical keyed requests hang the
    library, because its futures are keyed by request.
    """

    def __init__(self, order_id_floor: int = 0) -> None:
        self.ib = iblib.IB()
        self.ib.RaiseRequestErrors = True  # an error answer raises instead of an empty list
        self._locks: dict[str, asyncio.Lock] = {}
        self._updates_account: str | None = None  # the one account reqAccountUpdates follows
        self.order_id_floor = order_id_floor  # every order id used so far is below this

    # -- connection ------------------------------------------------------------------------
    async def connect(self, host: str, port: int, client_id: int, wait: float) -> None:
        """Connect with full sync; raises on timeout, refusal or a sync request failing."""
        kwargs: dict[str, Any] = {"clientId": client_id, "timeout": wait}
        if "raiseSyncErrors" in inspect.signature(self.ib.connectAsync).parameters:
            kwargs["raiseSyncErrors"] = True  # ib_async: a missing end marker is a failure
        await self.ib.connectAsync(host, port, **kwargs)
        accounts = self.accounts()
        # With one account the library's sync subscribed reqAccountUpdates to it already; with
        # several it only asked reqAccountUpdatesMulti, which carries values but no portfolio.
        self._updates_account = accounts[0] if len(accounts) == 1 else None

    def disconnect(self) -> None:
        self.ib.disconnect()

    def is_connected(self) -> bool:
        return self.ib.isConnected()

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        self.ib.disconnectedEvent += callback

    def on_error(self, callback: Callable[[int, int, str], None]) -> None:
        """``callback(req_id, code, message)`` for every error/notice the gateway sends."""
        self.ib.errorEvent += lambda req_id, code, msg, *_: callback(req_id, code, msg)

    def accounts(self) -> list[str]:
        return list(self.ib.managedAccounts())

    def server_version(self) -> int:
        return self.ib.client.serverVersion() if self.is_connected() else 0

    # -- reads -----------------------------------------------------------------------------
    async def account_values(self, account: str) -> list[dict[str, str]]:
        """Account values of one account, kept current by the library's subscriptions."""
        if not self.ib.accountValues(account):
            await self._follow(account)
        return [
            {"tag": v.tag, "value": v.value, "currency": v.currency}
            for v in self.ib.accountValues(account)
        ]

    async def portfolio(self, account: str) -> list[dict[str, Any]]:
        """The portfolio of one account (reqAccountUpdates follows one account at a time)."""
        await self._follow(account)
        return [
            {
                **_contract(p.contract),
                "position": p.position,
                "market_price": _num(p.marketPrice),
                "market_value": _num(p.marketValue),
                "average_cost": _num(p.averageCost),
                "unrealized_pnl": _num(p.unrealizedPNL),
                "realized_pnl": _num(p.realizedPNL),
            }
            for p in self.ib.portfolio(account)
        ]

    async def open_orders(self, account: str) -> list[dict[str, Any]]:
        """All clients' open orders (reqAllOpenOrders), not just this client's."""
        async with self._lock("open_orders"):
            trades = await self.ib.reqAllOpenOrdersAsync()
        return [self._trade(t) for t in trades if not account or t.order.account == account]

    async def executions(self, account: str) -> list[dict[str, Any]]:
        """Today's executions, asked again each time: fills made while we were disconnected
        are only visible this way (peer-systems.md)."""
        async with self._lock("executions"):
            fills = await self.ib.reqExecutionsAsync(iblib.ExecutionFilter(acctCode=account))
        return [self._fill(f) for f in fills]

    # -- orders (only the journal, worker/journal.py, calls these) --------------------------
    async def contract(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The one contract ``spec`` names, qualified (conId, multiplier, ...).

        Raises:
            ContractNotFound: IB knows no such contract (200), or the spec is ambiguous.
        """
        try:
            details = await self.ib.reqContractDetailsAsync(_to_contract(spec))
        except iblib.RequestError as exc:
            raise ContractNotFound(f"no contract for {spec}: IB {exc.code} {exc.message}") from None
        if len(details) != 1:
            raise ContractNotFound(f"{len(details)} contracts match {spec}; be more specific")
        return _contract(details[0].contract)

    async def place(
        self,
        contract: dict[str, Any],
        order: dict[str, Any],
        guard: Callable[[], None],
        ack_seconds: float,
    ) -> dict[str, Any]:
        """Send one new order and wait for the gateway's acknowledgement.

        ``guard()`` runs on the loop right before the order leaves (it raises when the run may
        no longer send). A duplicate id (103) means the order was not taken: a fresh id is
        tried. No acknowledgement in time raises OrderStateUnknown: the order may exist.
        """
        for _ in range(3):
            guard()
            trade = self.ib.placeOrder(_to_contract(contract), self._new_order(order))
            self.order_id_floor = max(self.order_id_floor, trade.order.orderId + 1)
            state = await self._acknowledged(trade, ack_seconds)
            if state.get("error_code") != 103:
                return state
        return state

    async def find(self, order_ref: str, wait: float) -> dict[str, list[dict[str, Any]]]:
        """Every trace of ``order_ref`` at the broker: all clients' open orders, completed
        orders and today's executions. Each answer must end with its end marker within
        ``wait`` seconds, else OrderStateUnknown: "no answer" is never "not there"."""
        completed = functools.partial(self.ib.reqCompletedOrdersAsync, False)  # not API-only
        open_, done, fills = await self._complete(
            (self._locked("open_orders", self.ib.reqAllOpenOrdersAsync), "open orders"),
            (self._locked("completed", completed), "completed orders"),
            (self._locked("executions", self.ib.reqExecutionsAsync), "executions"),
            wait=wait,
        )
        for t in [*open_, *done]:
            self.order_id_floor = max(self.order_id_floor, t.order.orderId + 1)
        return {
            "open": [self._trade(t) for t in open_ if t.order.orderRef == order_ref],
            "completed": [self._trade(t) for t in done if t.order.orderRef == order_ref],
            "fills": [self._fill(f) for f in fills if f.execution.orderRef == order_ref],
        }

    async def settle(self, legs: list[tuple[str, int]], wait: float) -> list[dict[str, Any]]:
        """States of our orders, by (orderRef, permId), once all are terminal or after
        ``wait``. PermIds and orderRefs survive gateway restarts; order ids do not, and an
        order that ended while we were away is known only as a completed order."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            self._still_connected()
            trades = [self._trade_for(ref, perm_id) for ref, perm_id in legs]
            done = all(t is not None and t.orderStatus.status in TERMINAL for t in trades)
            if done or asyncio.get_running_loop().time() >= deadline:
                return [self._state(t) if t else {} for t in trades]
            await asyncio.sleep(POLL_SECONDS)

    async def cancel(self, order_ref: str, perm_id: int, wait: float) -> dict[str, Any]:
        """Cancel one of our orders and wait until IB confirms a terminal state.

        Raises OrderStateUnknown when no confirmation comes in time.
        """
        trade = self._trade_for(order_ref, perm_id)
        if trade is None:
            raise OrderStateUnknown(f"order {order_ref} is not known to this session")
        if trade.orderStatus.status not in TERMINAL:
            self.ib.cancelOrder(trade.order)
        [state] = await self.settle([(order_ref, perm_id)], wait)
        if state.get("status") not in TERMINAL:
            raise OrderStateUnknown(f"cancel of {order_ref} not confirmed within {wait}s")
        return state

    # -- helpers ---------------------------------------------------------------------------
    def _new_order(self, spec: dict[str, Any]) -> Any:
        order = iblib.Order(
            orderId=self._next_order_id(),
            action=spec["action"],
            totalQuantity=spec["quantity"],
            orderType=spec["order_type"],
            tif=spec.get("tif") or "DAY",
            orderRef=spec["order_ref"],
            account=spec.get("account") or "",
        )
        if spec.get("limit_price") is not None:
            order.lmtPrice = spec["limit_price"]
        return order

    def _next_order_id(self) -> int:
        """Above the gateway's nextValidId, every order this client has seen and every id
        used before a reconnect (nextValidId has been seen to move backwards)."""
        me = self.ib.client.clientId
        seen = [t.order.orderId for t in self.ib.trades() if t.order.clientId == me]
        order_id = max(self.ib.client.getReqId(), self.order_id_floor, max(seen, default=0) + 1)
        self.ib.client.updateReqId(order_id + 1)
        return order_id

    async def _acknowledged(self, trade: Any, wait: float) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + wait
        while asyncio.get_running_loop().time() < deadline:
            self._still_connected()
            rejected = _rejection(trade)
            if rejected and not trade.order.permId:
                return {**self._state(trade), "error_code": rejected[0], "reason": rejected[1]}
            if trade.order.permId or trade.orderStatus.status in LIVE:
                return self._state(trade)
            await asyncio.sleep(POLL_SECONDS)
        raise OrderStateUnknown(
            f"order {trade.order.orderId} was sent but not acknowledged within {wait:.0f}s"
        )

    def _still_connected(self) -> None:
        """A dropped connection clears the library's order book: never read that as news."""
        if not self.is_connected():
            raise ConnectionError("the IB connection dropped while waiting on an order")

    def _trade_for(self, order_ref: str, perm_id: int) -> Any:
        """The newest view of an order: the one with our permId, else the ref's only one."""
        trades = [t for t in self.ib.trades() if t.order.orderRef == order_ref]
        exact = [t for t in trades if perm_id and t.order.permId == perm_id]
        return (exact or trades or [None])[-1]

    def _locked(self, key: str, request: Callable[[], Any]) -> Callable[[], Any]:
        async def run() -> Any:
            async with self._lock(key):
                return await request()

        return run

    @staticmethod
    async def _complete(*requests: tuple[Callable[[], Any], str], wait: float) -> list[Any]:
        async def one(request: Callable[[], Any], what: str) -> Any:
            try:
                return await asyncio.wait_for(request(), wait)
            except TimeoutError:
                raise OrderStateUnknown(f"{what} did not end within {wait:.0f}s") from None

        return [await one(request, what) for request, what in requests]

    def _state(self, t: Any) -> dict[str, Any]:
        """An order's state; fills from every execution this session saw for its permId (a
        completed order carries no fill figures of its own)."""
        perm_id = t.order.permId
        fills = [f for f in self.ib.fills() if perm_id and f.execution.permId == perm_id]
        state = {
            "order_id": t.order.orderId or None,
            "perm_id": perm_id,
            "status": t.orderStatus.status,
            "filled": _num(t.orderStatus.filled),
            "remaining": _num(t.orderStatus.remaining),
            "avg_price": _num(t.orderStatus.avgFillPrice),
            "commission": None,
        }
        if fills:
            shares = sum(f.execution.shares for f in fills)
            value = sum(f.execution.shares * f.execution.price for f in fills)
            state["filled"] = shares
            state["avg_price"] = value / shares if shares else None
            reports = [f.commissionReport for f in fills if f.commissionReport]
            state["commission"] = sum(_num(c.commission) or 0.0 for c in reports)
        return state

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _follow(self, account: str) -> None:
        """Point reqAccountUpdates at ``account``; IB follows one account per client, so
        switching replaces the previous subscription (and refreshes this one's portfolio)."""
        async with self._lock("account_updates"):
            if self._updates_account != account:
                await self.ib.reqAccountUpdatesAsync(account)
                self._updates_account = account

    @staticmethod
    def _trade(t: Any) -> dict[str, Any]:
        o, s = t.order, t.orderStatus
        return {
            **_contract(t.contract),
            "order_id": o.orderId,
            "perm_id": o.permId,
            "client_id": o.clientId,
            "account": o.account,
            "action": o.action,
            "quantity": _num(o.totalQuantity),
            "order_type": o.orderType,
            "limit_price": _num(o.lmtPrice),
            "aux_price": _num(o.auxPrice),
            "tif": o.tif,
            "order_ref": o.orderRef,
            "status": s.status,
            "filled": _num(s.filled),
            "remaining": _num(s.remaining),
            "avg_fill_price": _num(s.avgFillPrice),
        }

    @staticmethod
    def _fill(f: Any) -> dict[str, Any]:
        e, c = f.execution, f.commissionReport
        return {
            **_contract(f.contract),
            "exec_id": e.execId,
            "time": _iso(e.time),
            "account": e.acctNumber,
            "side": e.side,
            "shares": _num(e.shares),
            "price": _num(e.price),
            "order_id": e.orderId,
            "perm_id": e.permId,
            "client_id": e.clientId,
            "order_ref": e.orderRef,
            "cum_qty": _num(e.cumQty),
            "avg_price": _num(e.avgPrice),
            "commission": _num(c.commission),
            "commission_currency": c.currency,
            "realized_pnl": _num(c.realizedPNL),
        }
