"""Black-Scholes prices and greeks for ibsim's option chain (European, no dividends).

IB computes option ticks with its own model (dividends, American exercise, a volatility
surface); ibsim uses one flat volatility per underlying and a flat rate, which keeps prices,
greeks and implied volatilities consistent with each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RATE = 0.045  # continuously compounded risk-free rate
MIN_YEARS = 1.0 / (365.0 * 24 * 60)  # a minute: at expiry the price is intrinsic value


@dataclass(frozen=True)
class Greeks:
    """What IB's tickOptionComputation carries (theta per day, vega per vol point)."""

    implied_vol: float
    delta: float
    price: float
    gamma: float
    vega: float
    theta: float
    underlying: float


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _d1_d2(spot: float, strike: float, years: float, vol: float) -> tuple[float, float]:
    root = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (RATE + 0.5 * vol * vol) * years) / root
    return d1, d1 - root


def price(right: str, spot: float, strike: float, years: float, vol: float) -> float:
    """The option's value; ``right`` is "C" or "P"."""
    if years <= MIN_YEARS:
        return max(0.0, spot - strike) if right == "C" else max(0.0, strike - spot)
    d1, d2 = _d1_d2(spot, strike, years, vol)
    discount = math.exp(-RATE * years)
    if right == "C":
        return spot * _cdf(d1) - strike * discount * _cdf(d2)
    return strike * discount * _cdf(-d2) - spot * _cdf(-d1)


def greeks(right: str, spot: float, strike: float, years: float, vol: float) -> Greeks:
    """Price and greeks at ``vol`` (reported as the implied volatility)."""
    years = max(years, MIN_YEARS)
    d1, d2 = _d1_d2(spot, strike, years, vol)
    discount = math.exp(-RATE * years)
    call = right == "C"
    delta = _cdf(d1) if call else _cdf(d1) - 1.0
    gamma = _pdf(d1) / (spot * vol * math.sqrt(years))
    vega = spot * _pdf(d1) * math.sqrt(years) / 100.0
    carry = RATE * strike * discount * (_cdf(d2) if call else -_cdf(-d2))
    theta = (-spot * _pdf(d1) * vol / (2 * math.sqrt(years)) - carry) / 365.0
    value = price(right, spot, strike, years, vol)
    return Greeks(vol, delta, value, gamma, vega, theta, spot)


def implied_vol(right: str, spot: float, strike: float, years: float, target: float) -> float:
    """The volatility at which the model gives ``target`` (bisection; 0 when below intrinsic)."""
    low, high = 1e-4, 5.0
    if target <= price(right, spot, strike, years, low):
        return 0.0
    for _ in range(60):
        mid = (low + high) / 2
        if price(right, spot, strike, years, mid) < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2
