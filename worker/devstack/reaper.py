"""A watchdog that stops our children's process groups if we die without stopping them.

A parent killed by SIGKILL, or by a SIGTERM that skips ``finally`` blocks (pytest under
``timeout``), would leave the emulators' JVMs and gunicorn running, since they live in process
groups of their own. So the first child we start also starts this small process, in a session of
its own, reading group ids from a pipe: ``+PGID`` registers a group, ``-PGID`` forgets one that we
stopped ourselves. When the pipe closes, which happens however we die, it sends SIGTERM and then
SIGKILL to every group still registered, and exits. It never touches a group it was not told of.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO

GRACE_S = 5.0


class Reaper:
    """The parent's side of the watchdog: one per process, started on first use."""

    def __init__(self) -> None:
        """Create an idle reaper handle; the watchdog starts on the first register()."""
        self._lock = threading.Lock()
        self._pipe: IO[str] | None = None
        self._owner = 0

    def register(self, pgid: int) -> None:
        """Have the watchdog stop group pgid if this process dies first."""
        self._send(f"+{pgid}")

    def forget(self, pgid: int) -> None:
        """Tell the watchdog that group pgid was stopped by us."""
        self._send(f"-{pgid}")

    def _send(self, line: str) -> None:
        with self._lock:
            pipe = self._ensure_started()
            # A dead watchdog only costs the safety net; the normal stop path still works.
            with contextlib.suppress(OSError):
                pipe.write(line + "\n")
                pipe.flush()

    def _ensure_started(self) -> IO[str]:
        # A forked child must not share its parent's watchdog (the pipe would outlive it).
        if self._pipe is None or self._owner != os.getpid():
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker.devstack.reaper"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            if proc.stdin is None:
                raise RuntimeError("reaper started without its pipe")
            self._pipe, self._owner = proc.stdin, os.getpid()
        return self._pipe


REAPER = Reaper()


def _signal_all(groups: set[int], sig: int) -> set[int]:
    """Send sig (0: just probe) to each group; return the groups that still exist."""
    alive = set()
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
            alive.add(pgid)
    return alive


def watch(lines: IO[str]) -> None:
    """Read +PGID/-PGID lines until EOF, then stop the groups still registered."""
    groups: set[int] = set()
    for line in lines:
        sign, number = line[:1], line[1:].strip()
        if number.isdigit() and sign in "+-":
            (groups.add if sign == "+" else groups.discard)(int(number))
    alive = _signal_all(groups, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = _signal_all(alive, 0)
    _signal_all(alive, signal.SIGKILL)


if __name__ == "__main__":
    # Our own session: a Ctrl-C meant for the parent must not end the watchdog early.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(sys.stdin)
