"""ibsim's clock for demo and stack: real time in a session, else inside the last one (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from worker.devstack.clock import REAL_TIME, IbsimClock, choose_clock, clock_option

NEW_YORK = ZoneInfo("America/New_York")
CLOSED = "the market is closed now; ibsim trades inside the last session"


def ny(text: str) -> datetime:
    """A New York wall-clock time, e.g. ny("2026-11-30 10:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


def test_weekday_in_session_runs_on_real_time() -> None:
    clock = choose_clock(ny("2026-11-30 10:00"))  # a Monday
    assert clock == REAL_TIME
    assert clock.argv() == []
    assert clock.describe() == "real time (market open)"


@pytest.mark.parametrize(
    ("now", "start"),
    [
        ("2026-11-30 20:00", "2026-11-30T15:30:00Z"),  # weekday night: that day's session
        ("2026-12-01 08:00", "2026-11-30T15:30:00Z"),  # before the open: the day before's
        ("2026-11-30 16:00", "2026-11-30T15:30:00Z"),  # the close itself is outside
        ("2026-11-29 12:00", "2026-11-27T15:30:00Z"),  # Sunday: Friday's
        ("2026-11-28 03:00", "2026-11-27T15:30:00Z"),  # Saturday night
        ("2026-11-26 11:00", "2026-11-25T15:30:00Z"),  # Thanksgiving: the Wednesday before
        ("2026-07-07 06:00", "2026-07-06T14:30:00Z"),  # summer time: 10:30 is 14:30 UTC
        ("2026-07-05 12:00", "2026-07-02T14:30:00Z"),  # Sunday after the 3 July holiday
    ],
)
def test_closed_market_pins_the_clock_an_hour_into_the_last_session(now: str, start: str) -> None:
    clock = choose_clock(ny(now))
    assert clock.iso() == start
    assert clock.argv() == ["--clock-start", start]
    assert clock.describe() == f"{start} ({CLOSED})"


def test_early_close_day_is_open_until_one_and_closed_after() -> None:
    # The day after Thanksgiving 2026 closes at 13:00 New York.
    assert choose_clock(ny("2026-11-27 12:30")) == REAL_TIME
    after = choose_clock(ny("2026-11-27 13:30"))
    assert after.describe() == f"2026-11-27T15:30:00Z ({CLOSED})"


def test_minutes_before_the_close_pin_the_clock_earlier_in_the_session() -> None:
    clock = choose_clock(ny("2026-11-30 15:57"))
    assert clock.iso() == "2026-11-30T15:30:00Z"
    assert "closes in under 5 min" in clock.describe()
    assert choose_clock(ny("2026-11-27 12:56")).iso() == "2026-11-27T15:30:00Z"  # early close


def test_a_pinned_start_is_inside_the_session_ibsim_sees() -> None:
    from ibsim import hours

    start = choose_clock(ny("2026-11-28 12:00")).start
    assert start is not None
    assert hours.is_open("stk", start, rth=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("real", "real time (as asked)"),
        ("2026-11-27T15:30:00Z", "2026-11-27T15:30:00Z (as asked)"),
        ("2026-11-27T10:30:00-05:00", "2026-11-27T15:30:00Z (as asked)"),
        ("2026-11-27T15:30", "2026-11-27T15:30:00Z (as asked)"),  # no zone: UTC
    ],
)
def test_clock_option_takes_real_or_an_iso_time(value: str, expected: str) -> None:
    assert clock_option(value, datetime(2026, 11, 30, 15, tzinfo=UTC)).describe() == expected


def test_clock_option_auto_chooses_by_the_market() -> None:
    sunday = ny("2026-11-29 12:00")
    assert clock_option("auto", sunday) == choose_clock(sunday)


def test_clock_option_refuses_anything_else() -> None:
    with pytest.raises(ValueError, match="auto, real or an ISO time, not 'tomorrow'"):
        clock_option("tomorrow", datetime(2026, 11, 30, tzinfo=UTC))


def test_real_time_has_no_arguments() -> None:
    assert IbsimClock(reason="as asked").argv() == []
