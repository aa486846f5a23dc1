"""``spy_macd_vixy``: SPY MACD(12, 26, 9) on daily closes; the regime is state, not an event.

A bullish cross (MACD line moves above its signal line: previous diff <= 0 < diff) starts the
"long" regime: long SPY, no VIXY. A bearish cross (previous diff >= 0 > diff) starts "short":
short SPY and long VIXY as a hedge. Between crosses the stored regime is re-asserted on every
new bar. Earlier systems traded the cross as an event and went neutral the next day; here a
day without a cross keeps the position.

Crosses are looked for on every bar newer than the last bar already evaluated (``state``), so a
day the scheduler missed cannot lose a cross; with no state, only the last bar counts. No
regime known yet, or no new bar since the last run -> a hold (``fresh=False``).

EMA: seeded with the simple mean of the first N values, then ``ema += alpha * (x - ema)`` with
``alpha = 2 / (N + 1)`` (the usual charting convention). The signal line is that EMA of the
MACD line, so the first signal value needs ``slow + signal - 1`` closes and a cross needs one
more. The seed still weighs ``(1 - alpha) ** k`` after k further values: with the default 120
bars the slow EMA's seed is below 0.1 % of it, so values agree with a chart's to that order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.strategies.base import (
    Bar,
    DataNeed,
    Instrument,
    MarketData,
    MissingData,
    Signal,
    Strategy,
)

Regime = Literal["long", "short"]
# IB's primary listings: SPY on NYSE Arca, VIXY on Cboe BZX ("BATS" at IB), both routed SMART.
SPY = Instrument(symbol="SPY", primary_exchange="ARCA")
VIXY = Instrument(symbol="VIXY", primary_exchange="BATS")


class SpyMacdVixyConfig(BaseModel):
    """Settings of ``spy_macd_vixy`` (Firestore ``strategies.spy_macd_vixy``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    fast: int = Field(12, ge=1, le=200, description="Fast EMA period.")
    slow: int = Field(26, ge=2, le=400, description="Slow EMA period.")
    signal: int = Field(9, ge=1, le=200, description="Signal-line EMA period.")
    bars: int = Field(120, ge=3, le=2000, description="Daily bars to fetch (EMA warm-up).")
    # Signs are fixed so a magnitude typed where a signed weight belongs is refused; the short
    # regime is 200 % gross by default (as in the original example): size it with the
    # allocation's exposure share.
    long_weight: float = Field(1.0, ge=0, le=1, description="SPY weight in the long regime.")
    short_weight: float = Field(-1.0, ge=-1, le=0, description="SPY weight in the short regime.")
    hedge_weight: float = Field(1.0, ge=0, le=1, description="VIXY weight in the short regime.")

    @model_validator(mode="after")
    def _check(self) -> SpyMacdVixyConfig:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        if self.bars < min_bars(self):
            raise ValueError(f"bars must be >= slow + signal = {min_bars(self)}")
        return self


class MacdState(BaseModel):
    """The state stored between runs (``Signal.state``)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    regime: Regime | None = None
    regime_since: dt.date | None = None  # the bar of the cross that set the regime
    last_bar_date: dt.date | None = None
    macd: float | None = None
    signal: float | None = None


def min_bars(config: SpyMacdVixyConfig) -> int:
    """Closes needed to see a cross on the last bar: two signal-line values."""
    return config.slow + config.signal


def ema(values: Sequence[float], period: int) -> list[float]:
    """EMA seeded with the mean of the first ``period`` values.

    Returns:
        ``len(values) - period + 1`` values; the first belongs to ``values[period - 1]``.
    """
    if len(values) < period:
        return []
    alpha = 2.0 / (period + 1)
    out = [sum(values[:period]) / period]
    for x in values[period:]:
        out.append(out[-1] + alpha * (x - out[-1]))
    return out


def macd(closes: Sequence[float], fast: int, slow: int, signal: int) -> list[tuple[float, float]]:
    """(MACD line, signal line) for every close where both exist.

    Returns:
        ``len(closes) - slow - signal + 2`` pairs; the first belongs to
        ``closes[slow + signal - 2]``, the last to ``closes[-1]``.
    """
    fast_ema = ema(closes, fast)[slow - fast :]  # align with the slow EMA's first value
    line = [f - s for f, s in zip(fast_ema, ema(closes, slow), strict=True)]
    sig = ema(line, signal)
    return list(zip(line[signal - 1 :], sig, strict=True))


def weights(config: SpyMacdVixyConfig, regime: Regime) -> dict[str, float]:
    """Target weights of a regime; both instruments always named, so a switch closes the other."""
    if regime == "long":
        return {SPY.key: config.long_weight, VIXY.key: 0.0}
    return {SPY.key: config.short_weight, VIXY.key: config.hedge_weight}


def last_cross(
    dates: Sequence[dt.date], points: Sequence[tuple[float, float]], after: dt.date | None
) -> tuple[Regime, dt.date] | None:
    """The latest cross on a bar newer than ``after`` (only the last bar when ``after`` is None).

    ``dates`` and ``points`` are aligned at the end; a cross on bar i needs point i - 1.
    """
    offset = len(dates) - len(points)
    lowest = len(points) - 1 if after is None else 1
    for i in reversed(range(max(lowest, 1), len(points))):
        date = dates[offset + i]
        if after is not None and date <= after:
            break
        prev, cur = points[i - 1][0] - points[i - 1][1], points[i][0] - points[i][1]
        if prev <= 0 < cur:
            return "long", date
        if prev >= 0 > cur:
            return "short", date
    return None


def instruments(config: SpyMacdVixyConfig) -> dict[str, Instrument]:
    """SPY and VIXY."""
    del config  # fixed instruments
    return {SPY.key: SPY, VIXY.key: VIXY}


def needs(config: SpyMacdVixyConfig) -> list[DataNeed]:
    """Daily bars of SPY (``config.bars`` of them)."""
    return [DataNeed(instrument=SPY, kind="daily_bars", bars=config.bars)]


def signal(data: MarketData, config: SpyMacdVixyConfig, state: dict[str, Any]) -> Signal:
    """The regime's weights on a new bar; a hold when the bar was seen or no regime is known.

    Raises:
        MissingData: no SPY bars, or fewer than ``slow + signal``.
    """
    prev = MacdState.model_validate(state)
    bars = _enough_bars(data, config)
    last = bars[-1].date
    if prev.last_bar_date is not None and last <= prev.last_bar_date:
        return _hold(prev, f"no new SPY bar since {prev.last_bar_date}")
    points = macd([b.close for b in bars], config.fast, config.slow, config.signal)
    cross = last_cross([b.date for b in bars], points, prev.last_bar_date)
    regime, since = cross or (prev.regime, prev.regime_since)
    new = MacdState(
        regime=regime,
        regime_since=since,
        last_bar_date=last,
        macd=points[-1][0],
        signal=points[-1][1],
    )
    if regime is None:
        return _hold(new, f"no MACD cross up to {last} and no regime known yet")
    what = f"{'bullish' if regime == 'long' else 'bearish'} cross on {since}"
    return Signal(
        weights=weights(config, regime),
        instruments=instruments(config),
        fresh=True,
        state=new.model_dump(mode="json"),
        notes=f"{regime} regime ({what}); last bar {last}",
    )


def _enough_bars(data: MarketData, config: SpyMacdVixyConfig) -> list[Bar]:
    bars = data.bars(SPY)
    if len(bars) < min_bars(config):
        raise MissingData(SPY, f"need >= {min_bars(config)} daily bars, got {len(bars)}")
    return bars


def _hold(state: MacdState, notes: str) -> Signal:
    return Signal(
        instruments={SPY.key: SPY, VIXY.key: VIXY},
        fresh=False,
        state=state.model_dump(mode="json"),
        notes=notes,
    )


STRATEGY = Strategy(
    id="spy_macd_vixy",
    description="SPY MACD(12,26,9) on daily bars: long SPY after a bullish cross, short SPY and "
    "long VIXY after a bearish one; the regime holds between crosses.",
    config_model=SpyMacdVixyConfig,
    needs=needs,
    instruments=instruments,
    signal=signal,
)
