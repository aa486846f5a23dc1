"""Pacing rules as pure units: inbound message rate and historical-data limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ibsim.handlers.market import parse_end
from ibsim.messages.requests import BadRequest
from ibsim.pacing import HistoricalPacing, MessageRate, Verdict

T0 = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_message_rate_warns_once_per_second_then_disconnects():
    now = FakeTime()
    rate = MessageRate(limit=50, now=now)
    verdicts = [rate.hit() for _ in range(100)]
    assert verdicts[:50] == [Verdict.OK] * 50
    assert verdicts[50] == Verdict.WARN
    assert set(verdicts[51:]) == {Verdict.OK}
    assert rate.hit() == Verdict.DISCONNECT


def test_message_rate_window_slides():
    now = FakeTime()
    rate = MessageRate(limit=50, now=now)
    for i in range(500):
        now.t = i * 0.025  # 40 messages per second, forever
        assert rate.hit() == Verdict.OK


def _req(i: int = 0) -> tuple:
    return (756733, "", f"{i} D", "1 day", "TRADES", True)


def test_identical_request_within_15_seconds():
    pacing = HistoricalPacing()
    family = (756733, "SMART", "TRADES")
    assert pacing.check(T0, _req(), family) is None
    assert "identical" in pacing.check(T0 + timedelta(seconds=14), _req(), family)
    assert pacing.check(T0 + timedelta(seconds=16), _req(), family) is None


def test_six_requests_for_one_contract_within_2_seconds():
    pacing = HistoricalPacing()
    family = (756733, "SMART", "TRADES")
    for i in range(5):
        assert pacing.check(T0, _req(i), family) is None
    assert "6 or more" in pacing.check(T0, _req(99), family)
    assert pacing.check(T0, _req(99), (265598, "SMART", "TRADES")) is None
    assert pacing.check(T0 + timedelta(seconds=3), _req(100), family) is None


def test_sixty_requests_per_ten_minutes():
    pacing = HistoricalPacing()
    for i in range(60):
        assert pacing.check(T0 + timedelta(seconds=3 * i), _req(i), (i,)) is None
    assert "60 requests" in pacing.check(T0 + timedelta(seconds=181), _req(1000), (1000,))
    assert pacing.check(T0 + timedelta(minutes=11), _req(1000), (1000,)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", T0),
        ("20261117-21:00:00", datetime(2026, 11, 17, 21, tzinfo=UTC)),
        ("20261117 16:00:00 US/Eastern", datetime(2026, 11, 17, 21, tzinfo=UTC)),
        ("20261117 16:00:00", datetime(2026, 11, 17, 16, tzinfo=UTC)),
        ("20261117", datetime(2026, 11, 17, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_parse_end(text, expected):
    assert parse_end(text, T0) == expected


@pytest.mark.parametrize("text", ["yesterday", "20261117 16:00:00 Mars/Olympus"])
def test_parse_end_rejects_garbage_with_162(text):
    with pytest.raises(BadRequest) as info:
        parse_end(text, T0)
    assert info.value.code == 162
