"""Fixtures for ibsim's tests: an in-process simulator on a frozen clock, and raw clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import ibsim
from ibsim.market import Clock

# Wednesday 18 Nov 2026, 10:30 in New York: US stocks, FX and CME futures all trade.
MARKET_OPEN = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    """A frozen clock at a time when every market is open; tests move it explicitly."""
    return Clock(MARKET_OPEN, frozen=True)


@pytest.fixture
def sim(tmp_path, clock: Clock) -> Iterator[ibsim.ThreadedSimulator]:
    """The default scenario on a free loopback port, state kept under tmp_path."""
    with ibsim.run_in_thread(state_dir=tmp_path, clock=clock, process_interval=0.02) as running:
        yield running


@pytest.fixture
def connect_client(sim: ibsim.ThreadedSimulator) -> Iterator[Callable[..., Any]]:
    """Factory: connect_client(client_id=1, timeout=4.0) -> a connected IB client.

    Every client is disconnected at teardown: a client the server dropped but the library has
    not yet noticed would otherwise raise "Socket disconnect" inside a later test.
    """
    from tests.ibsim import iblib

    made: list[Any] = []

    def make(client_id: int = 1, timeout: float = 4.0) -> Any:
        client = iblib.IB()
        made.append(client)
        return iblib.connect(client, sim.host, sim.port, client_id=client_id, timeout=timeout)

    yield make
    for client in made:
        client.disconnect()


@pytest.fixture
def ib(connect_client: Callable[..., Any]) -> Any:
    """An IB client library instance connected (full sync) to ``sim`` as clientId 1."""
    return connect_client(1)
