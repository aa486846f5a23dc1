"""Allocation arithmetic on plain numbers: sizing, rounding, netting, crossing, collars."""

from __future__ import annotations

import pytest

from worker.holdings import net_and_cross, pro_rata
from worker.intents.targets import (
    Book,
    Priced,
    collar_price,
    consolidate,
    deltas,
    round_toward_zero,
    target_quantity,
)
from worker.intents.trading import price_of

SPY = Priced("SPY", {"con_id": 1, "multiplier": "", "size_increment": 1}, 600.0, "midpoint", 1.0)
MES = Priced("MES", {"con_id": 2, "multiplier": "5", "size_increment": 1}, 6000.0, "midpoint", 1.0)
EUR_STOCK = Priced("SAP", {"con_id": 3, "size_increment": 1}, 200.0, "midpoint", 1.1)


@pytest.mark.parametrize(
    ("quantity", "increment", "expected"),
    [(10.9, 1, 10), (-10.9, 1, -10), (25_499, 1000, 25_000), (-25_499, 1000, -25_000), (3, 1, 3)],
)
def test_rounding_is_toward_zero(quantity, increment, expected) -> None:
    assert round_toward_zero(quantity, increment) == expected


def test_target_uses_price_multiplier_and_fx() -> None:
    assert target_quantity(0.6, 100_000, SPY) == 100  # 60,000 / 600
    assert target_quantity(0.5, 100_000, MES) == 1  # 50,000 / (6,000 x 5) = 1.67
    assert target_quantity(-0.5, 100_000, MES) == -1
    assert target_quantity(1.0, 100_000, EUR_STOCK) == 454  # 100,000 / (200 x 1.1)


def test_delta_subtracts_holdings_and_orders_in_flight() -> None:
    book = Book(holdings={"a": {1: 60}}, inflight={"a": {1: 30}})
    assert deltas(book, "a", {1: 100}) == {1: 10}
    assert deltas(book, "b", {1: 100}) == {1: 100}


def test_opposite_deltas_cross_and_only_the_net_is_ordered() -> None:
    net, order, cross = net_and_cross({"a": 30, "b": -10})
    assert net == 20
    assert order == {"a": 20}
    assert cross == {"a": 10, "b": -10}


def test_consolidation_makes_one_order_per_instrument() -> None:
    book = Book(deltas={"a": {1: 30, 2: 0}, "b": {1: -10}})
    [order] = consolidate(book, {1: SPY, 2: MES})
    assert (order["con_id"], order["action"], order["quantity"]) == (1, "BUY", 20)
    assert order["shares"] == {"a": 20}


def test_a_fill_is_split_pro_rata() -> None:
    assert pro_rata(-30, {"a": -20, "b": -40}) == {"a": -10, "b": -20}
    assert pro_rata(5, {}) == {}


@pytest.mark.parametrize(("action", "expected"), [("BUY", 601.21), ("SELL", 598.8)])
def test_collar_is_through_the_quote_on_the_tick_grid(action, expected) -> None:
    # 600.005 x (1 +- 0.002) = 601.205 / 598.805: buys round up, sells down, to the tick.
    assert collar_price(600.005, action, 20, 0.01) == expected


@pytest.mark.parametrize(
    ("quote", "expected"),
    [
        ({"bid": 592.92, "ask": 592.94, "last": 1.0}, (592.93, "midpoint")),
        ({"bid": 0.1, "ask": 0.2}, (0.15, "midpoint")),
        ({"bid": None, "ask": 101.0, "last": 100.5, "close": 99.0}, (100.5, "last")),
        ({"bid": -1.0, "ask": 101.0, "close": 99.0}, (99.0, "close")),
        ({}, (None, "none")),
    ],
)
def test_the_plan_price_is_the_midpoint_else_last_else_close(quote, expected) -> None:
    assert price_of(quote) == expected
