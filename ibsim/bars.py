"""Historical bars from the deterministic price path, with IB's duration and bar-size strings.

Bars exist only inside trading sessions (liquid hours when useRTH is set). Intraday bars are
aligned to multiples of the bar size from local midnight and clipped to the session, the way
IB's first 1-hour RTH bar starts at 09:30; daily bars are one per session, dated by trading day.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ibsim import hours, walk
from ibsim.catalog import kind
from ibsim.model import Bar, Instrument, SecType

BAR_SECONDS: dict[str, int] = {
    "1 secs": 1,
    "5 secs": 5,
    "10 secs": 10,
    "15 secs": 15,
    "30 secs": 30,
    "1 min": 60,
    "2 mins": 120,
    "3 mins": 180,
    "5 mins": 300,
    "10 mins": 600,
    "15 mins": 900,
    "20 mins": 1200,
    "30 mins": 1800,
    "1 hour": 3600,
    "2 hours": 7200,
    "3 hours": 10800,
    "4 hours": 14400,
    "8 hours": 28800,
    "1 day": 86400,
}
DURATION_UNITS = {"S": 1, "D": 86400, "W": 7 * 86400, "M": 30 * 86400, "Y": 365 * 86400}
WHAT_TO_SHOW = frozenset({"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"})
MAX_BARS = 100_000
_DAILY_VOLUME = {SecType.STOCK: 5e6, SecType.FUTURE: 1e5}


@dataclass(frozen=True)
class BarRequest:
    """One reqHistoricalData, already validated for types (strings still IB's)."""

    inst: Instrument
    end: datetime
    duration: str
    bar_size: str
    what_to_show: str
    use_rth: bool
    format_date: int


def parse_duration(text: str) -> tuple[int, str]:
    """``"5 D"`` -> (5, "D").

    Raises:
        ValueError: not "<positive int> <S|D|W|M|Y>".
    """
    parts = text.strip().upper().split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in DURATION_UNITS:
        raise ValueError(f"Invalid duration {text!r}: expected e.g. '60 S', '1 D', '1 W', '1 Y'")
    count = int(parts[0])
    if count <= 0:
        raise ValueError(f"Invalid duration {text!r}: count must be positive")
    return count, parts[1]


def parse_bar_size(text: str) -> int:
    """IB bar size text -> seconds (``"1 min"`` -> 60).

    Raises:
        ValueError: unknown bar size.
    """
    normal = " ".join(text.strip().lower().split())
    if normal not in BAR_SECONDS:
        raise ValueError(f"Invalid bar size {text!r}; valid: {', '.join(BAR_SECONDS)}")
    return BAR_SECONDS[normal]


def _validate(spec: BarRequest) -> tuple[int, int, str]:
    count, unit = parse_duration(spec.duration)
    seconds = parse_bar_size(spec.bar_size)
    if spec.what_to_show not in WHAT_TO_SHOW:
        raise ValueError(f"Invalid whatToShow {spec.what_to_show!r}")
    if spec.inst.sec_type == SecType.CASH and spec.what_to_show in ("TRADES", "ADJUSTED_LAST"):
        raise ValueError(
            f"No historical market data for {spec.inst.local_symbol}/CASH: "
            "TRADES is not available for FX, use MIDPOINT, BID or ASK"
        )
    if spec.format_date not in (1, 2):
        raise ValueError(f"Invalid formatDate {spec.format_date}")
    return count, seconds, unit


def _window_sessions(spec: BarRequest, count: int, unit: str) -> list[hours.Session]:
    k = kind(spec.inst)
    if unit == "D":
        return hours.recent_sessions(k, spec.end, count, spec.use_rth)
    start = spec.end - timedelta(seconds=count * DURATION_UNITS[unit])
    found = hours.sessions_between(k, start, spec.end, spec.use_rth)
    if unit == "S":
        return [hours.Session(max(s.open, start), s.close) for s in found]
    return found


def build(
    spec: BarRequest, mid: Callable[[float], float], seed: int, annual_vol: float
) -> list[Bar]:
    """The bars a request asks for, oldest first.

    Args:
        spec: the request.
        mid: unrounded mid price at a Unix time.
        seed: scenario seed (volumes, highs and lows).
        annual_vol: the path's volatility (sizes the highs and lows).

    Raises:
        ValueError: see :meth:`ibsim.market.Market.bars`.
    """
    count, seconds, unit = _validate(spec)
    sessions = [s for s in _window_sessions(spec, count, unit) if s.open < spec.end]
    if seconds >= 86400:
        # A daily bar belongs to the window only if its whole session does (IB's 1 W = 5 bars).
        if unit != "D":
            start = spec.end - timedelta(seconds=count * DURATION_UNITS[unit])
            sessions = [s for s in sessions if s.open >= start]
        spans = [(s.open, min(s.close, spec.end), s.open) for s in sessions]
    else:
        spans = [span for s in sessions for span in _intraday_spans(s, spec.end, seconds)]
    if len(spans) > MAX_BARS:
        raise ValueError(f"Request for {len(spans)} bars exceeds the {MAX_BARS} bar limit")
    maker = _BarMaker(spec, mid, seed, annual_vol, daily=seconds >= 86400)
    return [maker.bar(start, stop, label) for start, stop, label in spans]


def _intraday_spans(
    session: hours.Session, end: datetime, seconds: int
) -> list[tuple[datetime, datetime, datetime]]:
    """(start, stop, label) per bar: aligned to the bar size from local midnight."""
    spans = []
    start, stop_at = session.open, min(session.close, end)
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while start < stop_at:
        elapsed = (start - midnight).total_seconds()
        boundary = midnight + timedelta(seconds=(math.floor(elapsed / seconds) + 1) * seconds)
        stop = min(boundary, stop_at)
        spans.append((start, stop, start))
        start = stop
    return spans


class _BarMaker:
    """Turns a time span into one Bar for the requested data type and date format."""

    def __init__(
        self,
        spec: BarRequest,
        mid: Callable[[float], float],
        seed: int,
        annual_vol: float,
        daily: bool,
    ) -> None:
        self.spec, self.mid, self.seed, self.daily = spec, mid, seed, daily
        self.vol_per_second = annual_vol / math.sqrt(walk.SECONDS_PER_YEAR)
        self.tick = spec.inst.min_tick
        self.tz = ZoneInfo(hours.KIND_TZ[kind(spec.inst)])
        self._prices: dict[float, float] = {}
        self._key = walk.tag_key(seed, spec.inst.con_id, "bars")

    def _price(self, t: float) -> float:
        # Adjacent bars share a boundary; each price costs a full walk evaluation.
        if t not in self._prices:
            self._prices[t] = self.mid(t)
        return self._prices[t]

    def bar(self, start: datetime, stop: datetime, label: datetime) -> Bar:
        """One bar over [start, stop): open and close from the path, high and low from a
        deterministic excursion of the size the path's volatility gives over the span."""
        a, b = start.timestamp(), stop.timestamp()
        o, c = self._price(a), self._price(b)
        reach = o * self.vol_per_second * math.sqrt(b - a) / 2
        up, down = walk.uniform_pair(self._key, int(a))
        h, lo = max(o, c) + reach * up, min(o, c) - reach * down
        o, h, lo, c = self._side(o, h, lo, c)
        o, h, lo, c = (self._round(x) for x in (o, h, lo, c))
        volume, wap, count = self._volume(a, b, (o + h + lo + c) / 4)
        return Bar(self._date(label), o, h, lo, c, volume, wap, count)

    def _side(self, o: float, h: float, lo: float, c: float) -> tuple[float, ...]:
        half = self.tick  # bid and ask sit about one tick either side of the mid
        shifts = {"BID": -half, "ASK": half}
        if self.spec.what_to_show == "BID_ASK":
            return o - half, h + half, lo - half, c + half
        shift = shifts.get(self.spec.what_to_show, 0.0)
        return o + shift, h + shift, lo + shift, c + shift

    def _round(self, price: float) -> float:
        digits = max(0, -math.floor(math.log10(self.tick))) + 2
        return round(round(price / self.tick) * self.tick, digits)

    def _volume(self, a: float, b: float, typical: float) -> tuple[float, float, int]:
        if self.spec.what_to_show not in ("TRADES", "ADJUSTED_LAST"):
            return -1.0, -1.0, -1  # IB sends -1 for quote-based bars
        daily = _DAILY_VOLUME.get(self.spec.inst.sec_type, 0.0)
        share = (b - a) / 23400
        volume = round(daily * share * (0.5 + walk.uniform(self.seed, self.spec.inst.con_id, a)))
        return float(volume), self._round(typical), max(1, volume // 100) if volume else 0

    def _date(self, label: datetime) -> str:
        local = label.astimezone(self.tz)
        if self.daily:
            # Futures and FX sessions open the evening before their trading day.
            day = local.date() + timedelta(days=1 if local.hour >= 12 else 0)
            return f"{day:%Y%m%d}"
        if self.spec.format_date == 2:
            return str(int(label.timestamp()))
        return f"{local:%Y%m%d %H:%M:%S} {hours.KIND_TZ[kind(self.spec.inst)]}"
