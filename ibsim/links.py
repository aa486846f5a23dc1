"""Orders that depend on other orders: brackets (parentId), OCA groups and transmit chains.

Pure rules over the broker's order table (keyed by ``(clientId, orderId)``); the broker acts on
what they answer. What IB does, and what ibsim models of it:

- A child (``parentId`` = an order id of the same client) is held, PreSubmitted, until its
  parent has filled completely, and is cancelled when its parent is cancelled (or expires).
  Children of one parent form an implicit OCA group that reduces (IB links a bracket's
  take-profit and stop-loss that way).
- OCA groups (``ocaGroup``, per account): ``ocaType`` 1 cancels the other orders of the group
  on a fill; 2 and 3 reduce them in proportion to the filled share (2 "with block", 3
  without: ibsim fills at one instant, so overfill protection has nothing to block).
- ``transmit=False``: the order stays at the gateway, never sent to IB (nothing is reported
  for it) until an order of its chain (the parent and its children) is placed with
  ``transmit=True``; then the whole chain is transmitted, parent first.
"""

from __future__ import annotations

from ibsim.model import TERMINAL_STATUSES, Order, OrderRejected, OrderRequest, OrderStatus
from ibsim.orders import CODE_REJECTED

Orders = dict[tuple[int, int], Order]

CANCEL_ON_FILL = 1  # ocaType 1: cancel the rest of the group
REDUCE = 2  # ocaType 2 (with block) and 3 (without): reduce the rest proportionately
_EPSILON = 1e-9


def parent(orders: Orders, order: Order) -> Order | None:
    """The order's parent, or None for a top-level order."""
    req = order.request
    return orders.get((req.client_id, req.parent_id)) if req.parent_id else None


def children(orders: Orders, order: Order) -> list[Order]:
    """The orders whose parentId is this order, oldest first."""
    client_id, order_id = order.key
    return [
        o
        for o in orders.values()
        if o.request.parent_id == order_id and o.request.client_id == client_id
    ]


def chain(orders: Orders, order: Order) -> list[Order]:
    """The order's whole family: its top-level ancestor, then every descendant, oldest first."""
    root = order
    while (up := parent(orders, root)) is not None:
        root = up
    family = [root]
    for member in family:  # grows while iterating: breadth first
        family.extend(children(orders, member))
    return family


def waiting_for_parent(orders: Orders, order: Order) -> bool:
    """Whether a child is still held because its parent has not filled."""
    up = parent(orders, order)
    return up is not None and up.status != OrderStatus.FILLED


def check_parent(orders: Orders, req: OrderRequest) -> None:
    """A child needs a live (or filled) parent of the same client.

    Raises:
        OrderRejected: 201, the parent is unknown, cancelled or inactive.
    """
    if not req.parent_id:
        return
    up = orders.get((req.client_id, req.parent_id))
    if up is None or (up.status in TERMINAL_STATUSES and up.status != OrderStatus.FILLED):
        state = "unknown" if up is None else up.status.value
        raise OrderRejected(
            f"Order rejected - reason: parent order {req.parent_id} is {state}", CODE_REJECTED
        )


def _group(order: Order) -> tuple[str, ...] | None:
    req = order.request
    if req.oca_group:
        return ("oca", req.account, req.oca_group)
    if req.parent_id:
        return ("bracket", str(req.client_id), str(req.parent_id))
    return None


def oca_type(order: Order) -> int:
    """How the order's group reacts to its fills: 1 cancel, 2 reduce (0: no group)."""
    req = order.request
    if req.oca_group:
        return CANCEL_ON_FILL if req.oca_type == CANCEL_ON_FILL else REDUCE
    return REDUCE if req.parent_id else 0


def oca_others(orders: Orders, order: Order) -> list[Order]:
    """The other live orders of the order's OCA group (explicit or bracket siblings)."""
    group = _group(order)
    if group is None:
        return []
    return [
        o
        for o in orders.values()
        if o is not order and o.status not in TERMINAL_STATUSES and _group(o) == group
    ]


def reduced_quantity(filler: Order, other: Order, qty: float) -> float:
    """``other``'s new total after ``filler`` (already updated) filled ``qty``.

    Its unfilled part shrinks in the proportion ``filler``'s unfilled part just shrank (equal
    sizes: by the filled quantity). 0 means nothing is left: cancel it.
    """
    before = filler.remaining + qty
    kept = other.remaining * (filler.remaining / before if before > _EPSILON else 0.0)
    return round(other.filled + kept, 8) if kept > _EPSILON else 0.0
