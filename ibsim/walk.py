"""Deterministic price paths: a random walk that is a pure function of (seed, key, time).

A quote at clock time t must not depend on which quotes were asked before, so the walk is built
by midpoint displacement (a Brownian bridge) over fixed dyadic windows of the Unix time line:
the value at any second costs one hash per level, about 45 in all, and never needs the seconds
before it. Two bridges are summed: a short one (2**20 s, about 12 days) for the daily wiggle and
a long one (2**25 s, about a year) for the trend. Both are pinned to zero at their window ends,
which keeps prices near the scenario's seed prices forever (a plain random walk from 1970 would
wander off by orders of magnitude).
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct

SHORT_LEVELS = 20
LONG_LEVELS = 25
SECONDS_PER_YEAR = 365.25 * 86400
# Scale of the long bridge relative to the annual volatility: its mid-window standard deviation
# is sqrt(2**25) / 2 seconds**0.5, roughly half a year of diffusion; damp it to keep yearly
# swings near the stated volatility instead of doubling it.
_LONG_DAMPING = 0.35


_MASK = (1 << 64) - 1


@functools.cache
def tag_key(*parts: object) -> int:
    """A 64-bit key for a path tag (hashed once; every node of the path mixes it in)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return struct.unpack(">Q", digest)[0]


def _mix(x: int) -> int:
    """splitmix64's finaliser: a fast, well-distributed 64-bit integer hash."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
    return x ^ (x >> 31)


def _uniforms(key: int, *numbers: int) -> tuple[float, float]:
    x = key
    for n in numbers:
        x = _mix((x ^ (n & _MASK)) + 0x9E3779B97F4A7C15 & _MASK)
    y = _mix(x + 0x9E3779B97F4A7C15 & _MASK)
    return (x + 1) / 2.0**64, y / 2.0**64  # the first is never 0, so its log is finite


def uniform_pair(key: int, *numbers: int) -> tuple[float, float]:
    """Two uniform variates in (0, 1] and [0, 1) determined by a tag key and integers."""
    return _uniforms(key, *numbers)


def normal(key: int, *numbers: int) -> float:
    """A standard normal variate determined by a tag key and integers (Box-Muller)."""
    u1, u2 = _uniforms(key, *numbers)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def uniform(*parts: object) -> float:
    """A uniform variate in [0, 1) determined by ``parts``."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return struct.unpack(">Q", digest)[0] / 2.0**64


@functools.lru_cache(maxsize=1 << 16)
def _displacement(key: int, window: int, lo: int, hi: int) -> float:
    # Nearby instants share the upper levels of their paths: caching them makes bars cheap.
    return math.sqrt((hi - lo) / 4) * normal(key, window, lo, hi)


def bridge(key: int, levels: int, t: int) -> float:
    """Value at integer second ``t`` of a Brownian bridge pinned to 0 every 2**levels seconds.

    Unit variance per second; ``key`` (see :func:`tag_key`) selects the path.
    """
    span = 1 << levels
    window, offset = divmod(t, span)
    lo, hi, v_lo, v_hi = 0, span, 0.0, 0.0
    while hi - lo > 1 and offset not in (lo, hi):
        mid = (lo + hi) // 2
        # The midpoint of a bridge over (hi - lo) seconds has variance (hi - lo) / 4.
        v_mid = (v_lo + v_hi) / 2 + _displacement(key, window, lo, hi)
        if offset < mid:
            hi, v_hi = mid, v_mid
        else:
            lo, v_lo = mid, v_mid
    return v_lo if offset == lo else v_hi


@functools.lru_cache(maxsize=65536)
def log_return(seed: int, key: str, t: int, annual_vol: float) -> float:
    """Log price relative to the seed price at integer Unix second ``t``."""
    per_second = annual_vol / math.sqrt(SECONDS_PER_YEAR)
    short = bridge(tag_key(seed, key, "short"), SHORT_LEVELS, t)
    long = bridge(tag_key(seed, key, "long"), LONG_LEVELS, t)
    return per_second * (short + _LONG_DAMPING * long)


def price(seed: int, key: str, base: float, t: float, annual_vol: float) -> float:
    """The path's price at Unix time ``t`` (whole seconds; the walk steps once per second)."""
    return base * math.exp(log_return(seed, key, math.floor(t), annual_vol))
