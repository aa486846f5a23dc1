"""The gateway's pacing rules: inbound message rate and historical-data request limits."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum

_PACING = "Historical Market Data Service error message:Pacing violation ("


class Verdict(Enum):
    OK = "ok"
    WARN = "warn"  # error 100, keep the connection
    DISCONNECT = "disconnect"  # sustained: the gateway drops the client


class MessageRate:
    """More than ``limit`` inbound messages in one second is error 100; ``2 x limit`` within
    one second counts as sustained and ends the connection (both libraries throttle at 45/s,
    so only a misbehaving client ever sees either)."""

    def __init__(self, limit: int = 50, now: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._now = now
        self._times: deque[float] = deque()
        self._warned_at = -1.0

    def hit(self) -> Verdict:
        """Record one inbound message and judge the rate."""
        t = self._now()
        self._times.append(t)
        while self._times and t - self._times[0] > 1.0:
            self._times.popleft()
        count = len(self._times)
        if count > 2 * self.limit:
            return Verdict.DISCONNECT
        if count > self.limit and t - self._warned_at >= 1.0:
            self._warned_at = t
            return Verdict.WARN
        return Verdict.OK

    @property
    def count(self) -> int:
        return len(self._times)

    def wait_time(self) -> float:
        """Seconds until one more message fits under the limit (+PACEAPI pacing); 0 if now."""
        t = self._now()
        recent = [x for x in self._times if t - x <= 1.0]
        if len(recent) < self.limit:
            return 0.0
        return max(0.0, recent[-self.limit] + 1.0 - t)


class HistoricalPacing:
    """IB's historical-data pacing, measured on the simulation clock.

    - no identical request within 15 s;
    - no six or more requests for the same contract, exchange and tick type within 2 s;
    - no more than 60 requests within any 10 minutes.
    """

    IDENTICAL = timedelta(seconds=15)
    BURST_WINDOW = timedelta(seconds=2)
    BURST_MAX = 5
    WINDOW = timedelta(minutes=10)
    WINDOW_MAX = 60

    def __init__(self) -> None:
        self._log: list[tuple[datetime, tuple, tuple]] = []

    def check(self, now: datetime, identity: tuple, family: tuple) -> str | None:
        """Record a request; returns the violation text, or None when it may proceed.

        Args:
            now: the simulation time of the request.
            identity: everything that makes two requests identical.
            family: contract, exchange and tick type (the 2-second burst rule).
        """
        self._log = [e for e in self._log if now - e[0] < self.WINDOW]
        if any(i == identity and now - t < self.IDENTICAL for t, i, _ in self._log):
            return f"{_PACING}identical request within 15 seconds)"
        burst = sum(1 for t, _, f in self._log if f == family and now - t < self.BURST_WINDOW)
        if burst >= self.BURST_MAX:
            return f"{_PACING}6 or more requests for one contract within 2 seconds)"
        if len(self._log) >= self.WINDOW_MAX:
            return f"{_PACING}more than 60 requests within 10 minutes)"
        self._log.append((now, identity, family))
        return None
