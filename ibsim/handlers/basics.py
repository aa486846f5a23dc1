"""Session-level requests: time, order ids, accounts, market data type, auto-binding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ibsim.messages import In
from ibsim.messages import session as msg
from ibsim.messages.requests import BadRequest, FieldReader
from ibsim.model import NotCancellable

if TYPE_CHECKING:
    from ibsim.session import Session


def req_current_time(s: Session, fields: list[str]) -> None:
    s.send(msg.current_time(int(s.sim.clock.now().timestamp())))


def req_ids(s: Session, fields: list[str]) -> None:
    """``8, 1, numIds`` -> ``9, 1, nextId`` (ids reserved, never handed out twice)."""
    count = max(FieldReader(fields, 2).int(1), 1)
    s.send(msg.next_valid_id(s.sim.broker.reserve_ids(s.client_id or 0, count)))


def req_managed_accounts(s: Session, fields: list[str]) -> None:
    s.send(msg.managed_accounts(s.sim.broker.accounts))


def req_market_data_type(s: Session, fields: list[str]) -> None:
    """``59, 1, type``: 1 live, 2 frozen, 3 delayed, 4 delayed-frozen."""
    data_type = FieldReader(fields, 2).int(1)
    if data_type not in (1, 2, 3, 4):
        raise BadRequest(f"invalid market data type {data_type}")
    s.market_data_type = data_type


def req_auto_open_orders(s: Session, fields: list[str]) -> None:
    """``15, 1, autoBind``; only clientId 0 may bind manual orders."""
    if s.client_id != 0:
        raise BadRequest("reqAutoOpenOrders is only available for clientId 0")
    s.auto_bind = FieldReader(fields, 2).bool()


def req_global_cancel(s: Session, fields: list[str]) -> None:
    """Cancel every working order of every client, as TWS's global cancel does."""
    broker = s.sim.broker
    for order in broker.open_orders(None):
        try:
            broker.cancel(*order.key)
        except NotCancellable:
            continue


HANDLERS = {
    In.REQ_CURRENT_TIME: req_current_time,
    In.REQ_IDS: req_ids,
    In.REQ_MANAGED_ACCTS: req_managed_accounts,
    In.REQ_MARKET_DATA_TYPE: req_market_data_type,
    In.REQ_AUTO_OPEN_ORDERS: req_auto_open_orders,
    In.REQ_GLOBAL_CANCEL: req_global_cancel,
}
