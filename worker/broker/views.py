"""Plain-data views of the IB library's objects: what leaves ``worker/broker`` is dicts.

Duck-typed (attributes are read, the library is never imported here), so these work the same
on ib_async and ib_insync objects and stay testable without either.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from worker.broker import codes


def num(value: Any) -> float | None:
    """IB's unset numbers (NaN, 1.79e308) become None so they serialise as JSON null."""
    if not isinstance(value, int | float) or math.isnan(value) or abs(value) > 1e300:
        return None
    return float(value)


def contract(c: Any) -> dict[str, Any]:
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


def rejection(trade: Any) -> tuple[int, str] | None:
    """The IB error that refused a new order, if any (codes.Kind.REJECTED, e.g. 201, 103)."""
    for entry in trade.log:
        code = getattr(entry, "errorCode", 0)
        if code and codes.classify(code) in (codes.Kind.REJECTED, codes.Kind.NOT_FOUND):
            return code, entry.message
    return None


def iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def order_state(t: Any, all_fills: list[Any]) -> dict[str, Any]:
    """An order's state; fills from every execution this session saw for its permId (a
    completed order carries no fill figures of its own)."""
    perm_id = t.order.permId
    fills = [f for f in all_fills if perm_id and f.execution.permId == perm_id]
    state = {
        "order_id": t.order.orderId or None,
        "perm_id": perm_id,
        "status": t.orderStatus.status,
        "filled": num(t.orderStatus.filled),
        "remaining": num(t.orderStatus.remaining),
        "avg_price": num(t.orderStatus.avgFillPrice),
        "commission": None,
    }
    if fills:
        shares = sum(f.execution.shares for f in fills)
        value = sum(f.execution.shares * f.execution.price for f in fills)
        state["filled"] = shares
        state["avg_price"] = value / shares if shares else None
        reports = [f.commissionReport for f in fills if f.commissionReport]
        state["commission"] = sum(num(c.commission) or 0.0 for c in reports)
    return state


def trade(t: Any) -> dict[str, Any]:
    o, s = t.order, t.orderStatus
    return {
        **contract(t.contract),
        "order_id": o.orderId,
        "perm_id": o.permId,
        "client_id": o.clientId,
        "account": o.account,
        "action": o.action,
        "quantity": num(o.totalQuantity),
        "order_type": o.orderType,
        "limit_price": num(o.lmtPrice),
        "aux_price": num(o.auxPrice),
        "tif": o.tif,
        "order_ref": o.orderRef,
        "status": s.status,
        "filled": num(s.filled),
        "remaining": num(s.remaining),
        "avg_fill_price": num(s.avgFillPrice),
    }


def fill(f: Any) -> dict[str, Any]:
    e, c = f.execution, f.commissionReport
    return {
        **contract(f.contract),
        "exec_id": e.execId,
        "time": iso(e.time),
        "account": e.acctNumber,
        "side": e.side,
        "shares": num(e.shares),
        "price": num(e.price),
        "order_id": e.orderId,
        "perm_id": e.permId,
        "client_id": e.clientId,
        "order_ref": e.orderRef,
        "cum_qty": num(e.cumQty),
        "avg_price": num(e.avgPrice),
        "commission": num(c.commission),
        "commission_currency": c.currency,
        "realized_pnl": num(c.realizedPNL),
    }


def bar(b: Any) -> dict[str, Any]:
    return {
        "date": iso(b.date)[:10],
        "open": num(b.open),
        "high": num(b.high),
        "low": num(b.low),
        "close": num(b.close),
        "volume": num(b.volume) or 0.0,
    }


def bar_at(b: Any) -> dict[str, Any]:
    """An intraday or daily bar with its start as a full timestamp."""
    return {
        "time": iso(b.date),
        "open": num(b.open),
        "high": num(b.high),
        "low": num(b.low),
        "close": num(b.close),
        "volume": num(b.volume) or 0.0,
        "wap": num(getattr(b, "average", None)),
        "count": getattr(b, "barCount", None),
    }
