"""The threaded form of the simulator that tests use: ``ibsim.run_in_thread``.

The simulator runs on its own event loop in a background thread; the test's thread talks to it
through thread-safe handles (``broker`` calls take the simulator's lock, ``faults`` calls and
``restart`` hop onto the loop, the clock is thread-safe by itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TypeVar

from ibsim.broker import Broker
from ibsim.scenario import Scenario
from ibsim.server import Simulator

T = TypeVar("T")


class _OnLoop:
    """Calls every method of ``target`` on the simulator's loop and waits for the result."""

    def __init__(self, target: object, sim: Simulator) -> None:
        self._target = target
        self._sim = sim

    def __getattr__(self, name: str) -> object:
        value = getattr(self._target, name)
        if not callable(value):
            return value
        return lambda *args, **kwargs: self._sim_call(value, *args, **kwargs)

    def _sim_call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        return call_on_loop(self._sim, fn, *args, **kwargs)


class _Locked:
    """Calls every method of ``target`` with the simulator's lock held (the broker)."""

    def __init__(self, target: object, lock: threading.RLock) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_lock", lock)

    def __getattr__(self, name: str) -> object:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        def locked(*args: object, **kwargs: object) -> object:
            with self._lock:
                return value(*args, **kwargs)

        return locked

    def __setattr__(self, name: str, value: object) -> None:
        with self._lock:
            setattr(self._target, name, value)


def call_on_loop(sim: Simulator, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run ``fn`` on the simulator's loop (directly when already there) and return its result."""
    loop = sim.loop
    if loop is None or _on_loop(loop):
        return fn(*args, **kwargs)

    async def run() -> T:
        return fn(*args, **kwargs)

    return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=30)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class ThreadedSimulator:
    """A :class:`Simulator` running on its own thread, with thread-safe handles for tests.

    ``broker`` calls take the simulator's lock; ``faults`` calls and :meth:`restart` run on
    the simulator's loop; ``clock`` is thread-safe by itself.
    """

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.host, self.port = sim.host, sim.port
        self.clock = sim.clock
        self.market = sim.market
        self.faults = _OnLoop(sim.faults, sim)

    @property
    def broker(self) -> Broker:
        return _Locked(self.sim.broker, self.sim.lock)  # type: ignore[return-value]

    def restart(self, keep_state: bool = True) -> None:
        """The nightly restart (see :meth:`Simulator.restart`)."""
        call_on_loop(self.sim, self.sim.restart, keep_state=keep_state)

    def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run ``fn`` on the simulator's loop with its lock held."""

        def locked() -> T:
            with self.sim.lock:
                return fn(*args, **kwargs)

        return call_on_loop(self.sim, locked)


@contextlib.contextmanager
def run_in_thread(
    scenario: str | Path | Scenario | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    state_dir: str | Path | None = None,
    seed: int | None = None,
    **options: object,
) -> Iterator[ThreadedSimulator]:
    """Run a simulator on a background thread for the duration of a ``with`` block.

    Args:
        scenario: built-in scenario name, YAML path or Scenario (None: "default").
        host: interface to bind (loopback unless told otherwise).
        port: port to bind; 0 picks a free one (read it from ``sim.port``).
        state_dir: where the broker persists its state (None: a temporary directory).
        seed: price seed (None: the scenario's).
        **options: further :class:`Simulator` keywords (clock, process_interval, ...).

    Yields:
        A :class:`ThreadedSimulator`.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="ibsim", daemon=True)
    thread.start()
    try:
        sim = _run(loop, _create(scenario, host, port, state_dir, seed, options))
        try:
            yield ThreadedSimulator(sim)
        finally:
            _run(loop, sim.stop())
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _create(
    scenario: str | Path | Scenario | None,
    host: str,
    port: int,
    state_dir: str | Path | None,
    seed: int | None,
    options: dict,
) -> Simulator:
    sim = Simulator(scenario, host, port, state_dir, seed, **options)
    await sim.start()
    return sim


def _run(loop: asyncio.AbstractEventLoop, coro: Coroutine[object, object, T]) -> T:
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)
