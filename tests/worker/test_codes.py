"""The IB error-code table, one row per code that matters (tws-protocol.md), and what a
refused historical request means for a run."""

from __future__ import annotations

import pytest

from worker.broker.codes import Kind, classify, is_retryable
from worker.broker.ib import _historical_error
from worker.broker.pacing import Budget
from worker.errors import DataRefused, GatewayNotReady

TABLE = [
    (1100, Kind.CONNECTIVITY_LOST, True),
    (1101, Kind.RESTORED_DATA_LOST, False),
    (1102, Kind.RESTORED_DATA_KEPT, False),
    (2104, Kind.INFORMATIONAL, False),
    (2106, Kind.INFORMATIONAL, False),
    (2158, Kind.INFORMATIONAL, False),
    (2107, Kind.INFORMATIONAL, False),
    (2108, Kind.INFORMATIONAL, False),
    (326, Kind.CLIENT_ID_IN_USE, True),
    (100, Kind.PACING, True),
    (162, Kind.PACING, True),
    (103, Kind.REJECTED, False),
    (201, Kind.REJECTED, False),
    (321, Kind.REJECTED, False),
    (10148, Kind.REJECTED, False),
    (200, Kind.NOT_FOUND, False),
    (202, Kind.WARNING, False),
    (399, Kind.WARNING, False),
    (354, Kind.DELAYED_INSTEAD, False),
    (10167, Kind.DELAYED_INSTEAD, False),
    (10168, Kind.NO_MARKET_DATA, False),
    (10197, Kind.NO_MARKET_DATA, False),
    (99999, Kind.OTHER, False),
]


@pytest.mark.parametrize(("code", "kind", "retryable"), TABLE)
def test_code_table(code: int, kind: Kind, retryable: bool) -> None:
    assert classify(code) is kind
    assert is_retryable(code) is retryable


HMDS = "Historical Market Data Service error message:"


@pytest.mark.parametrize(
    ("code", "message", "error"),
    [
        (162, f"{HMDS}API historical data query cancelled: pacing violation", Budget),
        (162, f"{HMDS}No market data permissions for NYSE STK", DataRefused),
        (162, f"{HMDS}HMDS query returned no data: SPY@SMART Trades", DataRefused),
        (100, "Max rate of messages per second has been exceeded", Budget),
        (1100, "Connectivity between IB and Trader Workstation has been lost", GatewayNotReady),
        (321, "Error validating request: invalid bar size", DataRefused),
        (200, "No security definition has been found for the request", DataRefused),
    ],
)
def test_a_refused_historical_request(code: int, message: str, error: type) -> None:
    got = _historical_error(code, message)
    assert type(got) is error
    assert str(got) == f"IB {code}: {message}"
