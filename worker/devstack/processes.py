"""Child processes of a local stack: started in process groups of their own, stopped for sure.

Every child is started with ``start_new_session=True``, so its process group id equals its pid
and nothing else lives in that group except what the child itself spawns (gcloud's JVM, gunicorn's
worker). Stopping a child signals that group: SIGTERM, then SIGKILL after a grace period, and
finally checks that no live process of the group remains. Only groups we created are signalled.

A child's stdout and stderr are piped through one reader thread that writes them to a log file
(never to our terminal) and sets an event when a readiness line appears, so start-up waits on an
event instead of sleeping.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from worker.devstack.reaper import REAPER

# Polling interval for conditions that offer no event to wait on (an HTTP endpoint, a closed port).
_POLL_S = 0.05


class StartupError(RuntimeError):
    """A child did not become ready in time, or exited while starting."""


_LOWEST_PORT = 15000
_given_ports: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Picked below the kernel's ephemeral range: a port the kernel hands out (bind to 0) is also
    what it gives the next outgoing connection, and with many clients connecting during tests
    that connection took the port before the child bound it (seen: the Firestore emulator
    exiting "Address already in use"). Below the range only another listener can take it.

    Returns:
        The port number. Another process may still take it before the caller binds it; the
        children we start on it fail loudly (StartupError) in that case rather than silently.
    """
    top = _ephemeral_low() - 1
    for _ in range(100):
        port = random.randint(_LOWEST_PORT, top)  # noqa: S311 - not for security
        if port not in _given_ports and _bindable(port):
            _given_ports.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return max(int(text.split()[0]), _LOWEST_PORT + 1000)
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range starts here


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Return True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """GET an http:// URL and return its HTTP status, or None if nothing answered."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def group_members(pgid: int) -> list[int]:
    """Return the pids of live (non-zombie) processes whose process group is pgid.

    Zombies are skipped: a JVM whose gcloud parent has exited is reaped by init a moment later,
    and until then it holds no port and runs no code. A "zombie" whose other threads still run
    is not one: a JVM's main thread can end while its shutdown hooks still hold the port.
    """
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # The command name in parentheses may contain spaces; fields after it are fixed.
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and (fields[0] != "Z" or _has_live_threads(entry)):
                members.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return members


def _has_live_threads(proc_dir: Path) -> bool:
    for task in (proc_dir / "task").iterdir():
        stat = (task / "stat").read_text()
        if stat[stat.rindex(")") + 2] != "Z":
            return True
    return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll condition until it holds; raise StartupError naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise StartupError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(_POLL_S)


@dataclass
class ManagedProcess:
    """One child process in its own process group, with its output in a log file.

    Attributes:
        name: Short name used in messages and the log file name.
        popen: The subprocess handle.
        log_path: Where the child's stdout and stderr go.
        ready_pattern: Regular expression on one output line that means "ready", if any.
    """

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    ready_pattern: re.Pattern[str] | None = None
    ready_match: re.Match[str] | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _pump: threading.Thread | None = None

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        ready_pattern: str | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        """Start argv in a new session with its output piped to log_dir/<name>.log.

        Args:
            name: Short name for messages and the log file.
            argv: Command and arguments (never secrets: command lines are visible to `ps`).
            log_dir: Directory for the log file; created if missing.
            env: Full environment for the child; defaults to ours.
            ready_pattern: Regex matched against each output line; the first match sets ready.
            cwd: Working directory for the child.

        Returns:
            The started process; await wait_ready_line() or wait_http() before using it.
        """
        log_dir.mkdir(parents=True, exist_ok=True)
        popen = subprocess.Popen(  # noqa: S603 - argv comes from this package, never from input
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        REAPER.register(popen.pid)
        pattern = re.compile(ready_pattern) if ready_pattern else None
        proc = cls(name=name, popen=popen, log_path=log_dir / f"{name}.log", ready_pattern=pattern)
        proc._pump = threading.Thread(target=proc._copy_output, name=f"log-{name}", daemon=True)
        proc._pump.start()
        return proc

    @property
    def pid(self) -> int:
        """The child's pid, which is also its process group id."""
        return self.popen.pid

    def running(self) -> bool:
        """Return True while the child itself has not exited."""
        return self.popen.poll() is None

    def _copy_output(self) -> None:
        if self.popen.stdout is None:
            return
        with self.log_path.open("w", encoding="utf-8") as log:
            for raw in self.popen.stdout:
                line = raw.decode("utf-8", "replace")
                log.write(line)
                log.flush()
                if self.ready_pattern and not self._ready.is_set():
                    match = self.ready_pattern.search(line)
                    if match:
                        self.ready_match = match
                        self._ready.set()
        # Output closed: the child exited. Wake any waiter so it can report that promptly.
        self._ready.set()

    def wait_ready_line(self, timeout: float) -> re.Match[str]:
        """Wait for the ready_pattern line.

        Args:
            timeout: Seconds to wait.

        Returns:
            The match of the ready line.

        Raises:
            StartupError: The child exited first or the line did not appear in time.
        """
        if self.ready_pattern is None:
            raise ValueError(f"{self.name} was started without a ready_pattern")
        closed = self._ready.wait(timeout)
        if self.ready_match is not None:
            return self.ready_match
        if closed:
            # Output ended without the line: the child is exiting; give it a moment to be reaped.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=2)
        if self.running():
            state = f"not ready after {timeout:.0f}s"
        else:
            state = f"exited ({self.popen.returncode}) before its ready line"
        raise StartupError(f"{self.name} {state}; log {self.log_path}:\n{self.log_tail()}")

    def wait_http(self, url: str, timeout: float, status: int = 200) -> None:
        """Poll GET url until it answers `status`; fail fast if the child exits meanwhile.

        Raises:
            StartupError: The child exited or the URL did not answer in time.
        """
        deadline = time.monotonic() + timeout
        while http_status(url) != status:
            if not self.running():
                raise StartupError(
                    f"{self.name} exited (code {self.popen.returncode}); "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise StartupError(
                    f"{self.name}: {url} not {status} after {timeout:.0f}s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(_POLL_S)

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines of the child's log (for error messages)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log yet)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> int | None:
        """Stop the child's whole process group: SIGTERM, then SIGKILL after `grace` seconds.

        Also waits (bounded) until no live process of the group remains, because gcloud can exit
        before the JVM it started.

        Args:
            grace: Seconds between SIGTERM and SIGKILL.

        Returns:
            The child's exit code (negative: killed by that signal), or None if unknown.
        """
        self._signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.popen.wait(timeout=grace)
        self._reap_group(grace)
        REAPER.forget(self.pid)
        if self._pump is not None:
            self._pump.join(timeout=grace)
        return self.popen.returncode

    def _reap_group(self, grace: float) -> None:
        try:
            wait_until(lambda: not group_members(self.pid), grace, f"{self.name} group to exit")
        except StartupError:
            # Something in the group ignored SIGTERM after its leader exited: kill it.
            self._signal_group(signal.SIGKILL)
            wait_until(lambda: not group_members(self.pid), grace, f"{self.name} group to die")

    def _signal_group(self, sig: signal.Signals) -> None:
        # The group id is our child's pid (start_new_session), so this reaches only what we
        # started. A vanished group is already stopped.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)


class ProcessStack:
    """Processes started in order and stopped in reverse order, exactly once."""

    def __init__(self, run_dir: Path) -> None:
        """Create an empty stack whose children log into run_dir."""
        self.run_dir = run_dir
        self._procs: list[ManagedProcess] = []
        self._lock = threading.Lock()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        ready_pattern: str | None = None,
    ) -> ManagedProcess:
        """Start a child (see ManagedProcess.start) and remember it for stop_all()."""
        proc = ManagedProcess.start(
            name, argv, log_dir=self.run_dir, env=env, ready_pattern=ready_pattern
        )
        with self._lock:
            self._procs.append(proc)
        return proc

    def stop_all(self, grace: float = 10.0) -> None:
        """Stop every child, newest first; safe to call more than once."""
        while True:
            with self._lock:
                if not self._procs:
                    return
                proc = self._procs.pop()
            proc.stop(grace)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM.

    A subclass of KeyboardInterrupt so Ctrl-C and SIGTERM unwind the same way: through every
    ``finally`` and context manager, which stop the children.
    """


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into a Terminated exception in the main thread while the block runs."""

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"received signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def python_tool(name: str) -> str:
    """Return the path of a console script installed next to the running interpreter."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name
