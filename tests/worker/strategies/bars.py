"""Known bar series and an independent MACD reference for the strategy tests."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from worker.strategies import Bar

START = dt.date(2026, 1, 5)


def bars(closes: Sequence[float], start: dt.date = START) -> list[Bar]:
    """One bar per close on consecutive days (the strategy only needs ascending dates)."""
    return [
        Bar(date=start + dt.timedelta(days=i), open=c, high=c, low=c, close=c, volume=1000)
        for i, c in enumerate(closes)
    ]


def reference_ema(values: Sequence[float], period: int, t: int) -> float:
    """EMA at index ``t`` in closed form: the SMA seed and every later value with its weight.

    Written differently from the recursion under test on purpose:
    ema_t = (1 - a)^(t - p + 1) * sma + sum_{j = p .. t} a * (1 - a)^(t - j) * x_j.
    """
    a = 2.0 / (period + 1)
    seed = sum(values[:period]) / period
    tail = sum(a * (1 - a) ** (t - j) * values[j] for j in range(period, t + 1))
    return (1 - a) ** (t - period + 1) * seed + tail


def reference_diffs(
    closes: Sequence[float], fast: int = 12, slow: int = 26, sig: int = 9
) -> dict[int, tuple[float, float]]:
    """{close index: (macd, signal)} for every index where the signal line exists."""
    line = {
        t: reference_ema(closes, fast, t) - reference_ema(closes, slow, t)
        for t in range(slow - 1, len(closes))
    }
    values = [line[t] for t in sorted(line)]
    out = {}
    for k in range(sig - 1, len(values)):
        out[slow - 1 + k] = (values[k], reference_ema(values, sig, k))
    return out


# A 40-bar sine wave: MACD crosses every 20 bars, never near zero (|diff| > 0.05), so the
# expected crosses do not hang on float rounding. Crosses (reference_diffs): down at 56 and 96,
# up at 76 and 116.
WAVE = [round(100 + 10 * math.sin(2 * math.pi * i / 40), 2) for i in range(120)]
UP_AT, DOWN_AT = 76, 96


def crosses(closes: Sequence[float]) -> dict[int, str]:
    """{close index: "up" | "down"} for every reference cross in ``closes``."""
    diffs = {t: m - s for t, (m, s) in reference_diffs(closes).items()}
    out = {}
    for t in sorted(diffs)[1:]:
        prev, cur = diffs[t - 1], diffs[t]
        if prev <= 0 < cur or prev >= 0 > cur:
            out[t] = "up" if cur > 0 else "down"
    return out
