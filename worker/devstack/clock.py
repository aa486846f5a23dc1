"""Which clock ibsim runs on in ``make demo`` and ``make stack``.

ibsim follows the real exchange calendars, so a stock market order placed while the New York
Stock Exchange is closed waits for the open, as at IB. For the demo to fill its order at any
hour, the stack runs ibsim on real time only while the regular XNYS session is open (with a few
minutes to spare); otherwise it starts ibsim's clock one hour into the most recent regular
session (10:30 New York on a normal day, inside even a 13:00 early close).

Sessions come from ibsim's own calendar code (``ibsim.hours``, exchange_calendars' XNYS), so the
moment chosen here is one ibsim itself treats as open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ibsim import hours

# US stocks and ETFs (SPY): the kind whose sessions decide whether a market order fills.
STOCK = "stk"
# Closer to the close than this, real time would let the demo's order miss the session.
MIN_LEFT = timedelta(minutes=5)
# Where inside a session the pinned clock starts: the open plus this (10:30 New York).
INTO_SESSION = timedelta(hours=1)


@dataclass(frozen=True)
class IbsimClock:
    """ibsim's clock for a stack: real time (``start`` None) or a start inside a session.

    Attributes:
        start: The moment ibsim's clock starts at (tz-aware UTC), or None for real time.
        reason: Why, in a few words, for the printout.
    """

    start: datetime | None = None
    reason: str = "market open"

    def argv(self) -> list[str]:
        """The ``ibsim serve`` arguments for this clock (none for real time)."""
        return ["--clock-start", self.iso()] if self.start else []

    def iso(self) -> str:
        """The start as ISO 8601 UTC with a Z, e.g. 2026-11-27T15:30:00Z ('' for real time)."""
        return self.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if self.start else ""

    def describe(self) -> str:
        """The printout's value, e.g. ``real time (market open)``."""
        return f"{self.iso() or 'real time'} ({self.reason})"


REAL_TIME = IbsimClock()


def choose_clock(now: datetime) -> IbsimClock:
    """Return real time while the US stock market is open at ``now``, else a pinned start.

    Args:
        now: The current time, tz-aware.

    Returns:
        Real time during a regular XNYS session that has at least MIN_LEFT to run; otherwise a
        clock starting INTO_SESSION after the open of the most recent regular session (the one
        in progress, when it is about to close).
    """
    session = hours.session_at(STOCK, now, rth=True)
    if session is not None and session.close - now >= MIN_LEFT:
        return REAL_TIME
    last = _latest_session(now)
    if session is None:
        reason = "the market is closed now; ibsim trades inside the last session"
    else:
        minutes = int(MIN_LEFT.total_seconds() // 60)
        reason = f"the market closes in under {minutes} min; ibsim trades earlier in the session"
    return IbsimClock(start=(last.open + INTO_SESSION).astimezone(UTC), reason=reason)


def _latest_session(now: datetime) -> hours.Session:
    """The most recent regular session that opened before ``now``, else the next one."""
    recent = hours.recent_sessions(STOCK, now, 1, rth=True)
    if recent:
        return recent[-1]
    day = hours.local_day(STOCK, now)
    for offset in range(1, 15):
        found = hours.sessions(STOCK, day + timedelta(days=offset), True)
        if found:
            return found[0]
    raise LookupError(f"no regular US stock session within two weeks of {now.isoformat()}")


def clock_option(value: str, now: datetime) -> IbsimClock:
    """Turn the CLI's ``--ibsim-clock`` value into a clock.

    Args:
        value: ``auto`` (choose_clock), ``real`` (real time even when the market is closed) or
            an ISO 8601 time to start at (no zone: UTC).
        now: The current time, for ``auto``.

    Raises:
        ValueError: The value is none of these.
    """
    if value == "auto":
        return choose_clock(now)
    if value == "real":
        return IbsimClock(reason="as asked")
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"ibsim clock must be auto, real or an ISO time, not {value!r}") from None
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    return IbsimClock(start=start.astimezone(UTC), reason="as asked")
