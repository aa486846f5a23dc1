"""ibsim's frames through the client library's own decoder, at 176 and 178.

The libraries swallow surplus fields, so a frame that is one field off can still "work"; here
every field the library reads must land in the attribute it belongs to.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC

import pytest

from ibsim.messages import market, orders
from ibsim.model import OrderStatus
from tests.ibsim import iblib, samples

pytestmark = pytest.mark.ib_client


class Recorder:
    """The callback side of the decoder (what EWrapper is to IB's Java client)."""

    defaultTimezone = UTC

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str):
        return lambda *args: self.calls.append((name, *args))


def _decode(fields: list[str], version: int) -> tuple:
    recorder = Recorder()
    decoder = iblib.lib.decoder.Decoder(recorder, version)
    decoder.interpret(list(fields))
    [call] = recorder.calls
    return call


def _versions() -> list[int]:
    return [176] if iblib.NAME == "ib_insync" else [176, 178]


@pytest.mark.parametrize("version", _versions())
def test_open_order_decodes_into_the_right_attributes(version):
    algo = ("Adaptive", (("adaptivePriority", "Normal"),))
    order = samples.order(OrderStatus.SUBMITTED, algo=algo)
    order.warning_text = "odd lot"
    _, order_id, contract, decoded, state = _decode(
        orders.open_order(order, samples.ACCOUNT, version), version
    )
    assert (order_id, contract.conId, contract.symbol) == (7, 756733, "SPY")
    assert (decoded.action, decoded.totalQuantity, decoded.lmtPrice) == ("BUY", 100, 600.5)
    assert (decoded.orderRef, decoded.clientId, decoded.permId) == ("run-42/leg-1", 1, 1000007)
    assert decoded.account == samples.ACCOUNT
    assert decoded.algoStrategy == "Adaptive"
    assert [(p.tag, p.value) for p in decoded.algoParams] == [("adaptivePriority", "Normal")]
    assert (state.status, state.warningText) == ("Submitted", "odd lot")
    assert decoded.usePriceMgmtAlgo in (False, 0, None)


@pytest.mark.parametrize("version", _versions())
def test_completed_order_decodes_into_the_right_attributes(version):
    order = samples.order(OrderStatus.FILLED)
    order.filled = 100
    order.completed_time, order.completed_status = "20261118 15:30:01 UTC", "Filled"
    _, contract, decoded, state = _decode(
        orders.completed_order(order, samples.ACCOUNT, version), version
    )
    assert contract.conId == 756733
    assert (decoded.orderRef, decoded.permId, decoded.filledQuantity) == (
        "run-42/leg-1",
        1000007,
        100,
    )
    assert (state.status, state.completedTime, state.completedStatus) == (
        "Filled",
        "20261118 15:30:01 UTC",
        "Filled",
    )


@pytest.mark.parametrize("version", _versions())
def test_exec_details_decodes_into_the_right_attributes(version):
    _, req_id, contract, execution = _decode(
        orders.exec_details(-1, samples.fill(), version), version
    )
    assert (req_id, contract.conId, execution.orderId, execution.clientId) == (-1, 756733, 7, 1)
    assert (execution.shares, execution.price, execution.cumQty) == (100, 600.25, 100)
    assert (execution.orderRef, execution.lastLiquidity) == ("run-42/leg-1", 2)
    assert execution.time.tzinfo is not None


@pytest.mark.parametrize("version", _versions())
def test_contract_details_decode_into_the_right_attributes(version):
    _, req_id, details = _decode(market.contract_details(3, samples.MES), version)
    c = details.contract
    assert (req_id, c.conId, c.symbol, c.multiplier) == (3, 730283085, "MES", "5")
    assert c.lastTradeDateOrContractMonth == "20261218"
    assert details.timeZoneId == "US/Central"
    assert (details.minTick, details.minSize, details.sizeIncrement) == (0.25, 1, 1)
    assert dataclasses.is_dataclass(details)
