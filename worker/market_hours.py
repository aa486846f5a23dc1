"""Is an instrument's market open at a moment? From the exchange calendars, as ibsim decides.

US stocks, ETFs and indexes follow the ``XNYS`` regular session (holidays and early closes
included); CME futures the ``CMES`` calendar without Globex's daily 16:00-17:00 CT halt;
IDEALPRO FX runs Sunday 17:15 to Friday 17:00 New York time and ignores holidays. A moment
outside a calendar's range (about 20 years back, one year ahead) counts as open on weekdays.

The moment is the gateway's clock (``reqCurrentTime``), not this machine's: in production they
agree, and against ibsim the gateway's simulated clock is the one its fills follow.
"""

from __future__ import annotations

import functools
import warnings
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars

NEW_YORK = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
CALENDAR = {"STK": "XNYS", "ETF": "XNYS", "IND": "XNYS", "FUT": "CMES", "CFD": "XNYS"}
_FX_SUNDAY_OPEN, _FX_FRIDAY_CLOSE = time(17, 15), time(17, 0)
_GLOBEX_HALT = (time(16, 0), time(17, 0))


@functools.cache
def _calendar(name: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a pandas deprecation inside exchange-calendars
        return exchange_calendars.get_calendar(name)


def calendar_of(sec_type: str) -> str:
    """The calendar that decides ``sec_type``'s hours ("FX" for currencies)."""
    return "FX" if sec_type == "CASH" else CALENDAR.get(sec_type, "XNYS")


def is_open(sec_type: str, when: datetime) -> bool:
    """True when an order for ``sec_type`` would trade at ``when`` (tz-aware)."""
    name = calendar_of(sec_type)
    if name == "FX":
        return _fx_open(when.astimezone(NEW_YORK))
    if name == "CMES" and _in_globex_halt(when.astimezone(CHICAGO)):
        return False
    minute = when.replace(second=0, microsecond=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the same pandas deprecation
            return bool(_calendar(name).is_open_on_minute(minute))
    except ValueError:  # outside the calendar's range
        return when.astimezone(NEW_YORK).weekday() < 5


def _fx_open(local: datetime) -> bool:
    day, clock = local.weekday(), local.time()
    if day == 5:
        return False
    if day == 6:
        return clock >= _FX_SUNDAY_OPEN
    if day == 4:
        return clock < _FX_FRIDAY_CLOSE
    return not (_FX_FRIDAY_CLOSE <= clock < _FX_SUNDAY_OPEN)  # the daily 15-minute break


def _in_globex_halt(local: datetime) -> bool:
    return _GLOBEX_HALT[0] <= local.time() < _GLOBEX_HALT[1]
