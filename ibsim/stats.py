"""Figures the generic ticks of reqMktData carry, from the deterministic price path.

- 165 (misc stats): 13, 26 and 52-week lows and highs of the daily closes, and the average
  daily volume;
- 233 (RT volume): the day's VWAP, approximated by the average price at half-hour samples of
  the regular session so far;
- 236 (shortable): every catalog stock is easy to borrow.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta

from ibsim import hours
from ibsim.catalog import kind
from ibsim.market import Market
from ibsim.model import Instrument

WEEKS = (13, 26, 52)
SHORTABLE = 3.0  # IB's tick 46: above 2.5 means at least 1,000 shares can be borrowed
SHORTABLE_SHARES = 10_000_000.0
VWAP_STEP = timedelta(minutes=30)


def week_ranges(market: Market, inst: Instrument, today: date) -> dict[str, float]:
    """``low13week`` .. ``high52week`` from one close per weekday (16:00 New York)."""
    closes = _closes(market, inst, today)
    ranges: dict[str, float] = {}
    for weeks in WEEKS:
        window = closes[-weeks * 5 :]
        ranges[f"low{weeks}week"] = min(window)
        ranges[f"high{weeks}week"] = max(window)
    return ranges


@functools.lru_cache(maxsize=256)
def _closes(market: Market, inst: Instrument, today: date) -> tuple[float, ...]:
    days = [today - timedelta(days=n) for n in range(52 * 7, 0, -1)]
    stamps = [datetime.combine(d, time(16), hours.EASTERN) for d in days if d.weekday() < 5]
    return tuple(market.quote_at(inst, when).last for when in stamps)


def vwap(market: Market, inst: Instrument, now: datetime) -> float:
    """The regular session's volume-weighted price so far (see the module docstring)."""
    session = hours.session_at(kind(inst), now, rth=True)
    if session is None:
        return market.quote_at(inst, now).last
    prices, when = [], session.open
    while when <= now:
        prices.append(market.quote_at(inst, when).last)
        when += VWAP_STEP
    return round(sum(prices) / len(prices), 4)
