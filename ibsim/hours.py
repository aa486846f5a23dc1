"""Trading sessions per instrument kind, from the exchange calendars.

US equity and index sessions come from the ``XNYS`` calendar of the exchange-calendars package
(holidays and early closes included); CME futures from its ``CMES`` calendar; IDEALPRO FX runs
Sunday 17:15 to Friday 17:00 New York time with a 15-minute daily break and ignores holidays
(IB's FX desk stays open on most US holidays). Outside the calendars' range (about 20 years back
to one year ahead) every weekday counts as a regular session.

Times in IB strings are in the instrument's time zone, the one contract details name
(``US/Eastern`` for stocks and FX, ``US/Central`` for CME).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars

EASTERN = ZoneInfo("US/Eastern")
CENTRAL = ZoneInfo("US/Central")
KIND_TZ = {"stk": "US/Eastern", "ind": "US/Eastern", "fut": "US/Central", "fx": "US/Eastern"}

# Regular (liquid) and extended (trading) hours, local time, for a normal day.
_STK_EXTENDED = (time(4, 0), time(20, 0))
_EARLY_CLOSE_EXTENDED_END = time(17, 0)
_FUT_LIQUID = (time(8, 30), time(15, 0))
_FUT_CLOSE = time(16, 0)
_FX_OPEN, _FX_CLOSE = time(17, 15), time(17, 0)


@dataclass(frozen=True)
class Session:
    """One continuous trading period, tz-aware at both ends (close exclusive)."""

    open: datetime
    close: datetime

    def contains(self, when: datetime) -> bool:
        """True when ``when`` falls inside the session."""
        return self.open <= when < self.close


@functools.cache
def _calendar_days(name: str) -> dict[date, tuple[datetime, datetime]]:
    """Session date -> (open, close) in UTC for one exchange calendar."""
    with warnings.catch_warnings():
        # exchange-calendars still uses a pandas API that pandas 3 deprecates; harmless here.
        warnings.simplefilter("ignore")
        schedule = exchange_calendars.get_calendar(name).schedule
    rows = zip(schedule.index, schedule["open"], schedule["close"], strict=True)
    return {d.date(): (o.to_pydatetime(), c.to_pydatetime()) for d, o, c in rows}


def _calendar_session(name: str, day: date) -> tuple[datetime, datetime] | None:
    days = _calendar_days(name)
    if day in days:
        return days[day]
    first, last = min(days), max(days)
    if first <= day <= last or day.weekday() >= 5:
        return None  # a holiday or a weekend inside the calendar's range
    return _fallback_session(name, day)


def _fallback_session(name: str, day: date) -> tuple[datetime, datetime]:
    if name == "XNYS":
        opens = datetime.combine(day, time(9, 30), EASTERN)
        return opens, datetime.combine(day, time(16, 0), EASTERN)
    opens = datetime.combine(day - timedelta(days=1), time(17, 0), CENTRAL)
    return opens, datetime.combine(day, time(16, 0), CENTRAL)


def _stock_sessions(day: date, rth: bool, index: bool) -> list[Session]:
    found = _calendar_session("XNYS", day)
    if found is None:
        return []
    opens, closes = (t.astimezone(EASTERN) for t in found)
    if rth or index:
        return [Session(opens, closes)]
    early = closes.time() < time(16, 0)
    end = _EARLY_CLOSE_EXTENDED_END if early else _STK_EXTENDED[1]
    return [Session(_at(day, _STK_EXTENDED[0], EASTERN), _at(day, end, EASTERN))]


def _future_sessions(day: date, rth: bool) -> list[Session]:
    found = _calendar_session("CMES", day)
    if found is None:
        return []
    opens, closes = (t.astimezone(CENTRAL) for t in found)
    # The calendar runs the session to 17:00; Globex halts 16:00-17:00 CT every day.
    closes = min(closes, _at(day, _FUT_CLOSE, CENTRAL))
    if not rth:
        return [Session(opens, closes)]
    liquid_open = _at(day, _FUT_LIQUID[0], CENTRAL)
    return [Session(liquid_open, min(closes, _at(day, _FUT_LIQUID[1], CENTRAL)))]


def _fx_sessions(day: date) -> list[Session]:
    if day.weekday() >= 5:
        return []
    return [Session(_at(day - timedelta(days=1), _FX_OPEN, EASTERN), _at(day, _FX_CLOSE, EASTERN))]


def _at(day: date, clock_time: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, clock_time, tz)


@functools.lru_cache(maxsize=4096)
def sessions(kind: str, day: date, rth: bool) -> tuple[Session, ...]:
    """The sessions that belong to trading day ``day`` (they may start the evening before).

    Args:
        kind: "stk", "ind", "fut" or "fx".
        day: the trading day, in the instrument's time zone.
        rth: regular trading hours only (liquid hours) instead of the full trading hours.
    """
    if kind in ("stk", "ind"):
        return tuple(_stock_sessions(day, rth, kind == "ind"))
    if kind == "fut":
        return tuple(_future_sessions(day, rth))
    if kind == "fx":
        return tuple(_fx_sessions(day))
    raise ValueError(f"unknown instrument kind {kind!r}")


def local_day(kind: str, when: datetime) -> date:
    """The calendar date of ``when`` in the kind's time zone."""
    return when.astimezone(ZoneInfo(KIND_TZ[kind])).date()


def session_at(kind: str, when: datetime, rth: bool) -> Session | None:
    """The session in progress at ``when``, if any."""
    day = local_day(kind, when)
    for candidate in (day, day + timedelta(days=1)):
        for session in sessions(kind, candidate, rth):
            if session.contains(when):
                return session
    return None


def is_open(kind: str, when: datetime, rth: bool) -> bool:
    """True when a session of the kind is in progress at ``when``."""
    return session_at(kind, when, rth) is not None


def close_after(kind: str, when: datetime, rth: bool) -> datetime:
    """The close of the session in progress at ``when`` or, between sessions, of the next one.

    This is when a DAY order placed at ``when`` expires.
    """
    day = local_day(kind, when)
    for offset in range(0, 15):
        for session in sessions(kind, day + timedelta(days=offset), rth):
            if session.close > when:
                return session.close
    return when + timedelta(days=1)  # unreachable with real calendars; keeps the type simple


def open_after(kind: str, when: datetime, rth: bool) -> datetime:
    """The open of the first session that opens at or after ``when``."""
    day = local_day(kind, when)
    for offset in range(0, 15):
        for session in sessions(kind, day + timedelta(days=offset), rth):
            if session.open >= when:
                return session.open
    return when + timedelta(days=1)  # unreachable with real calendars; keeps the type simple


def sessions_between(kind: str, start: datetime, end: datetime, rth: bool) -> list[Session]:
    """All sessions overlapping [start, end), in time order."""
    first, last = local_day(kind, start), local_day(kind, end) + timedelta(days=1)
    found: list[Session] = []
    day = first
    while day <= last:
        found.extend(s for s in sessions(kind, day, rth) if s.close > start and s.open < end)
        day += timedelta(days=1)
    return found


def recent_sessions(kind: str, end: datetime, count: int, rth: bool) -> list[Session]:
    """The last ``count`` sessions that opened before ``end``, oldest first."""
    found: list[Session] = []
    day = local_day(kind, end) + timedelta(days=1)
    for _ in range(count * 2 + 15):
        found[:0] = [s for s in sessions(kind, day, rth) if s.open < end]
        if len(found) >= count:
            break
        day -= timedelta(days=1)
    return found[-count:] if count else []


def previous_close(kind: str, when: datetime) -> datetime:
    """The close of the last regular session that ended at or before ``when``."""
    day = local_day(kind, when)
    for offset in range(0, 15):
        for session in reversed(sessions(kind, day - timedelta(days=offset), True)):
            if session.close <= when:
                return session.close
    return when - timedelta(days=1)


def hours_string(kind: str, start_day: date, rth: bool, days: int = 7) -> str:
    """IB's tradingHours / liquidHours text for ``days`` trading days from ``start_day``.

    Example: ``20261124:0930-20261124:1600;20261126:CLOSED``.
    """
    tz = ZoneInfo(KIND_TZ[kind])
    parts = []
    for offset in range(days):
        day = start_day + timedelta(days=offset)
        found = sessions(kind, day, rth)
        if not found:
            parts.append(f"{day:%Y%m%d}:CLOSED")
        parts.extend(f"{_fmt(s.open, tz)}-{_fmt(s.close, tz)}" for s in found)
    return ";".join(parts)


def _fmt(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y%m%d:%H%M")
