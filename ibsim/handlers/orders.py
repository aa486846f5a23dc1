"""Order requests: place/modify, cancel, open and completed orders, executions.

Order events themselves (openOrder, orderStatus, execDetails, commissionReport) are pushed by
the simulator from the broker's event callbacks; see ``Simulator._on_order_status``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ibsim.messages import In
from ibsim.messages import orders as msg
from ibsim.messages.requests import (
    BadRequest,
    FieldReader,
    read_execution_filter,
    read_place_order,
)
from ibsim.model import TERMINAL_STATUSES, NotCancellable, Order, OrderRejected, OrderRequest

if TYPE_CHECKING:
    from ibsim.session import Session

REJECTED_PREFIX = "Order rejected - reason:"


CODE_NOT_FOUND = 10147  # cancelOrder for an id this client never used


def place_order(s: Session, fields: list[str]) -> None:
    """``3, orderId, contract, order``: new order, or a modify when the id is known."""
    decoded = read_place_order(fields, s.client_id or 0, s.version)
    req = decoded.request
    if decoded.what_if:
        what_if(s, req)
        return
    if s.sim.faults.take_drop_on_place():
        s.sim.drop_all()  # fault: the order goes ahead, but nobody hears of it
    if not req.contract.exchange:
        raise BadRequest("Missing order exchange.")  # what the real gateway answers (321)
    if not req.account and len(s.sim.broker.accounts) == 1:
        req = dataclasses.replace(req, account=s.sim.broker.accounts[0])
    try:
        s.sim.broker.place(req)
    except OrderRejected as exc:
        s.error(req.order_id, exc.code, rejection_text(exc))
        return
    s.sim.process_soon()  # fills arrive asynchronously, after the Submitted status


def what_if(s: Session, req: OrderRequest) -> None:
    """whatIf=1: an openOrder with the margins and commission it would cost; nothing placed."""
    if not req.contract.exchange:
        raise BadRequest("Missing order exchange.")
    try:
        order, answer = s.sim.broker.what_if(req)
    except OrderRejected as exc:
        s.error(req.order_id, exc.code, rejection_text(exc))
        return
    s.send(msg.open_order(order, order.request.account, s.version, answer))


def rejection_text(exc: OrderRejected) -> str:
    """IB's wording: 201 texts start with "Order rejected - reason:"."""
    if exc.code == 201 and not exc.reason.startswith(REJECTED_PREFIX):
        return f"{REJECTED_PREFIX} {exc.reason}"
    return exc.reason


def cancel_order(s: Session, fields: list[str]) -> None:
    """``4, 1, orderId[, manualOrderCancelTime]`` -> 202 then Cancelled; 10147 for an id this
    client never used, 10148 for an order that is already done."""
    order_id = FieldReader(fields, 2).int()
    broker = s.sim.broker
    order = broker.order(s.client_id or 0, order_id)
    if order is None:
        text = f"OrderId {order_id} that needs to be cancelled is not found."
        s.error(order_id, CODE_NOT_FOUND, text)
        return
    if order.status in TERMINAL_STATUSES:
        text = f"OrderId {order_id} that needs to be cancelled cannot be cancelled"
        s.error(order_id, 10148, f"{text}, state: {order.status.value}.")
        return
    # The gateway announces 202 first; the Cancelled orderStatus follows.
    s.error(order_id, 202, "Order Canceled - reason:")
    try:
        broker.cancel(s.client_id or 0, order_id)
    except NotCancellable as exc:
        s.error(order_id, 10148, str(exc))


def send_order(s: Session, order: Order) -> None:
    """openOrder then orderStatus for one order, laid out for this client's version."""
    for fields in _order_messages(s, order):
        s.send(fields)


def push_order(s: Session, order: Order) -> None:
    """The same pair as an event to the order's owner (it queues behind late acks)."""
    for fields in _order_messages(s, order):
        s.send_order_event(fields)


def _order_messages(s: Session, order: Order) -> list[list[str]]:
    account = order.request.account or s.sim.broker.accounts[0]
    return [msg.open_order(order, account, s.version), msg.order_status(order)]


def req_open_orders(s: Session, fields: list[str]) -> None:
    """``5, 1``: this client's working orders (clientId 0 bound: everyone's), then ``53``."""
    owner = None if s.client_id == 0 and s.auto_bind else s.client_id
    for order in s.sim.broker.open_orders(owner):
        send_order(s, order)
    s.send_end("openOrderEnd", msg.open_order_end())


def req_all_open_orders(s: Session, fields: list[str]) -> None:
    """``16, 1``: the working orders of every client, then ``53``."""
    for order in s.sim.broker.open_orders(None):
        send_order(s, order)
    s.send_end("openOrderEnd", msg.open_order_end())


def req_completed_orders(s: Session, fields: list[str]) -> None:
    """``99, apiOnly`` -> ``101`` per finished order, then ``102``."""
    for order in s.sim.broker.completed_orders():
        account = order.request.account or s.sim.broker.accounts[0]
        s.send(msg.completed_order(order, account, s.version))
    s.send_end("completedOrdersEnd", msg.completed_orders_end())


def req_executions(s: Session, fields: list[str]) -> None:
    """``7, 3, reqId, filter`` -> execDetails + commissionReport per fill, then ``55``."""
    req_id, flt = read_execution_filter(fields)
    for fill in s.sim.broker.executions(flt):
        s.send(msg.exec_details(req_id, fill, s.version))
        s.send(msg.commission_report(fill))
    s.send_end("execDetailsEnd", msg.exec_details_end(req_id))


HANDLERS = {
    In.PLACE_ORDER: place_order,
    In.CANCEL_ORDER: cancel_order,
    In.REQ_OPEN_ORDERS: req_open_orders,
    In.REQ_ALL_OPEN_ORDERS: req_all_open_orders,
    In.REQ_COMPLETED_ORDERS: req_completed_orders,
    In.REQ_EXECUTIONS: req_executions,
}
