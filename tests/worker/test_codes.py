"""The IB error-code table, one row per code that matters (tws-protocol.md)."""

from __future__ import annotations

import pytest

from worker.broker.codes import Kind, classify, is_retryable

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
