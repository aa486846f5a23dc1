"""The ONLY module of the worker that imports the IB client library.

ib_async is preferred; ib_insync (same API, last released 2023) works as a fallback so users can
pin either. Everything leaving this module is plain data (dicts, lists, str, float), so no
other module depends on the library's types. All methods are coroutines for the session's
event-loop thread (``session.py``); they must never block that loop.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

try:  # pragma: no cover - which branch runs depends on the virtualenv
    import ib_async as iblib
except ImportError:  # pragma: no cover
    import ib_insync as iblib  # type: ignore[no-redef]

LIBRARY = f"{iblib.__name__} {getattr(iblib, '__version__', '?')}"


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


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


class Gateway:
    """One IB client connection and the read/trade operations intents need.

    Keyed library requests (account updates for one account, open orders, executions) are
    serialized with one asyncio lock per key: concurrent identical keyed requests hang the
    library, because its futures are keyed by request.
    """

    def __init__(self) -> None:
        self.ib = iblib.IB()
        self.ib.RaiseRequestErrors = True  # an error answer raises instead of an empty list
        self._locks: dict[str, asyncio.Lock] = {}

    # -- connection ------------------------------------------------------------------------
    async def connect(self, host: str, port: int, client_id: int, wait: float) -> None:
        """Connect with full sync; raises on timeout, refusal or a sync request failing."""
        kwargs: dict[str, Any] = {"clientId": client_id, "timeout": wait}
        if "raiseSyncErrors" in inspect.signature(self.ib.connectAsync).parameters:
            kwargs["raiseSyncErrors"] = True  # ib_async: a missing end marker is a failure
        await self.ib.connectAsync(host, port, **kwargs)

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
        """reqAccountUpdates values for one account (subscribes once, then cached)."""
        async with self._lock(f"account:{account}"):
            if not self.ib.accountValues(account):
                await self.ib.reqAccountUpdatesAsync(account)
        return [
            {"tag": v.tag, "value": v.value, "currency": v.currency}
            for v in self.ib.accountValues(account)
        ]

    async def portfolio(self, account: str) -> list[dict[str, Any]]:
        await self.account_values(account)  # the portfolio arrives with the account updates
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

    # -- helpers ---------------------------------------------------------------------------
    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

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
