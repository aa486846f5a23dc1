"""Orders that depend on other orders, at the broker: brackets, OCA groups, transmit chains."""

from __future__ import annotations

import pytest

from ibsim.model import OrderRejected, OrderStatus
from tests.ibsim.test_broker import make_broker, quote, req


def _status(broker, order_id: int) -> OrderStatus:
    return broker.order(1, order_id).status


def _bracket(broker, parent_price: float, take_profit: float, stop: float, qty: float = 100):
    """Parent BUY LMT (transmit=False), take-profit SELL LMT (False), stop SELL STP (True)."""
    broker.place(req(1, qty=qty, order_type="LMT", lmt_price=parent_price, transmit=False))
    broker.place(
        req(2, action="SELL", qty=qty, order_type="LMT", lmt_price=take_profit, parent_id=1,
            transmit=False)
    )  # fmt: skip
    broker.place(
        req(3, action="SELL", qty=qty, order_type="STP", aux_price=stop, parent_id=1)
    )  # fmt: skip


# --- brackets --------------------------------------------------------------------------------


def test_children_are_held_until_the_parent_fills() -> None:
    broker, _ = make_broker()
    q = quote(broker)
    _bracket(broker, parent_price=1.0, take_profit=round(q.bid * 0.9, 2), stop=1.0)
    broker.process()  # the take-profit is marketable, but its parent rests
    assert [_status(broker, i) for i in (1, 2, 3)] == [
        OrderStatus.SUBMITTED,
        OrderStatus.PRE_SUBMITTED,
        OrderStatus.PRE_SUBMITTED,
    ]
    assert broker.order(1, 2).filled == 0


def test_parent_fill_releases_children_and_a_child_fill_cancels_its_sibling() -> None:
    broker, rec = make_broker()
    q = quote(broker)
    before = broker.positions()
    _bracket(broker, round(q.ask * 1.01, 2), round(q.bid * 0.99, 2), round(q.bid * 0.5, 2))
    broker.process()
    assert [_status(broker, i) for i in (1, 2, 3)] == [
        OrderStatus.FILLED,
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,  # the stop-loss: its sibling took the whole quantity
    ]
    assert [f.order_key for f in rec.fills] == [(1, 1), (1, 2)]
    assert [p.quantity for p in broker.positions()] == [p.quantity for p in before]


def test_cancelling_the_parent_cancels_its_children() -> None:
    broker, rec = make_broker()
    _bracket(broker, parent_price=1.0, take_profit=9999.0, stop=1.0)
    broker.cancel(1, 1)
    assert [_status(broker, i) for i in (1, 2, 3)] == [OrderStatus.CANCELLED] * 3
    assert rec.statuses[-2:] == [
        ((1, 2), OrderStatus.CANCELLED, 0),
        ((1, 3), OrderStatus.CANCELLED, 0),
    ]


def test_a_child_of_an_unknown_or_cancelled_parent_is_rejected() -> None:
    broker, _ = make_broker()
    with pytest.raises(OrderRejected, match="parent order 9 is unknown"):
        broker.place(req(1, action="SELL", order_type="LMT", lmt_price=9999.0, parent_id=9))
    broker.place(req(2, order_type="LMT", lmt_price=1.0))
    broker.cancel(1, 2)
    with pytest.raises(OrderRejected, match="parent order 2 is Cancelled") as err:
        broker.place(req(3, action="SELL", order_type="LMT", lmt_price=9999.0, parent_id=2))
    assert err.value.code == 201


# --- transmit=False --------------------------------------------------------------------------


def test_untransmitted_order_is_silent_and_never_fills_until_transmitted() -> None:
    broker, rec = make_broker()
    broker.place(req(1, transmit=False))
    broker.process()
    assert _status(broker, 1) == OrderStatus.API_PENDING
    assert rec.statuses == []  # the gateway tells the client nothing
    assert broker.open_orders(None) == []  # not at IB yet
    broker.place(req(1))  # the same order again, transmit=True
    broker.process()
    assert _status(broker, 1) == OrderStatus.FILLED
    assert [s for _, s, _ in rec.statuses] == [OrderStatus.SUBMITTED, OrderStatus.FILLED]


def test_bracket_is_transmitted_by_its_last_child_parent_first() -> None:
    broker, rec = make_broker()
    _bracket(broker, parent_price=1.0, take_profit=9999.0, stop=1.0)
    assert [key for key, _, _ in rec.statuses] == [(1, 1), (1, 2), (1, 3)]


def test_cancelling_an_untransmitted_order() -> None:
    broker, _ = make_broker()
    broker.place(req(1, transmit=False))
    broker.cancel(1, 1)
    assert _status(broker, 1) == OrderStatus.CANCELLED


# --- OCA groups ------------------------------------------------------------------------------


@pytest.mark.parametrize(("oca_type", "left"), [(1, 0.0), (2, 75.0), (3, 75.0)])
def test_partial_fill_cancels_or_reduces_the_rest_of_the_group(oca_type, left) -> None:
    broker, _ = make_broker(partial_fill_size={"STK": 25})
    group = dict(oca_group="g", oca_type=oca_type)
    broker.place(req(1, order_type="LMT", lmt_price=1.0, **group))
    broker.place(req(2, **group))  # market: fills 25 per step
    broker.process()
    resting = broker.order(1, 1)
    if left:
        assert (resting.status, resting.request.total_quantity) == (OrderStatus.SUBMITTED, left)
    else:
        assert resting.status == OrderStatus.CANCELLED
    broker.process()
    broker.process()
    broker.process()
    assert (_status(broker, 2), _status(broker, 1)) == (OrderStatus.FILLED, OrderStatus.CANCELLED)


def test_reduction_is_proportional_to_the_filled_share() -> None:
    broker, _ = make_broker(partial_fill_size={"STK": 25})
    group = dict(oca_group="g", oca_type=3)
    broker.place(req(1, qty=200, order_type="LMT", lmt_price=1.0, **group))
    broker.place(req(2, qty=100, **group))
    broker.process()  # a quarter of order 2 filled: a quarter of order 1 goes
    assert broker.order(1, 1).request.total_quantity == 150


def test_cancelling_an_unfilled_oca_order_cancels_its_group() -> None:
    broker, _ = make_broker()
    group = dict(oca_group="g", oca_type=1)
    broker.place(req(1, order_type="LMT", lmt_price=1.0, **group))
    broker.place(req(2, order_type="LMT", lmt_price=1.5, **group))
    broker.place(req(3, order_type="LMT", lmt_price=1.5, oca_group="other", oca_type=1))
    broker.cancel(1, 1)
    assert [_status(broker, i) for i in (1, 2, 3)] == [
        OrderStatus.CANCELLED,
        OrderStatus.CANCELLED,
        OrderStatus.SUBMITTED,
    ]
