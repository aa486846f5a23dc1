"""IB's historical-data pacing, kept by the worker so that ibsim or IB never answers 162.

Rules (tws-protocol.md, "Limits"): no identical request within 15 s; at most 5 requests for
the same contract within 2 s; at most 60 requests in any 10 minutes. ``admit`` says how long to
wait before a request may go, or that the 10-minute budget is spent (the caller stops and
continues on its next run). One pacer per worker process: the gateway counts per login.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

IDENTICAL_SECONDS = 15.0
PER_CONTRACT = (5, 2.0)
WINDOW = (60, 600.0)


class Budget(Exception):  # a verdict: the caller stops and continues on its next run
    """The 10-minute request budget is spent."""


class HistoricalPacer:
    """Thread-safe; ``clock`` is monotonic seconds (injected by tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: deque[tuple[float, str, str]] = deque()  # (when, contract, request)

    def admit(self, contract: str, request: str) -> float:
        """Seconds to wait before sending; raises Budget when none may go for minutes.

        Args:
            contract: the contract's identity (conId or symbol:secType:currency).
            request: the whole request's identity (contract, end, duration, size, type).
        """
        with self._lock:
            now = self._clock()
            self._forget(now)
            if len(self._sent) >= WINDOW[0]:
                raise Budget(f"{WINDOW[0]} historical requests in {WINDOW[1]:.0f} s")
            waits = [0.0]
            same = [t for t, _, r in self._sent if r == request]
            if same:
                waits.append(same[-1] + IDENTICAL_SECONDS - now)
            recent = [t for t, c, _ in self._sent if c == contract and now - t < PER_CONTRACT[1]]
            if len(recent) >= PER_CONTRACT[0]:
                waits.append(recent[-PER_CONTRACT[0]] + PER_CONTRACT[1] - now)
            return max(waits)

    def sent(self, contract: str, request: str) -> None:
        with self._lock:
            self._sent.append((self._clock(), contract, request))

    def _forget(self, now: float) -> None:
        while self._sent and now - self._sent[0][0] >= WINDOW[1]:
            self._sent.popleft()


PACER = HistoricalPacer()
