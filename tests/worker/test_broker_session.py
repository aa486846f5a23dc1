"""BrokerSession against ibsim through the real IB client library (ib_async or ib_insync).

These run in both virtualenvs (marker ib_client): the session and broker/ib.py are the only
worker code that touches the library.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from worker.broker.session import Backoff, BrokerSession
from worker.errors import GatewayNotReady, IntentTimeout

pytestmark = pytest.mark.ib_client
FAST = Backoff(initial=0.05, cap=0.3)


def until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def session(ibsim_server) -> Iterator[BrokerSession]:
    s = BrokerSession(ibsim_server.host, ibsim_server.port, 11, connect_timeout=3, backoff=FAST)
    s.start()
    assert s.wait_ready(15), "session never became ready"
    yield s
    s.stop()


def test_ready_after_full_sync(session: BrokerSession) -> None:
    status = session.status()
    assert status["ready"]
    assert status["server_version"] >= 176
    assert status["accounts"] == ["DU1234567"]


def test_reads_plain_data(session: BrokerSession) -> None:
    values = session.call(lambda gw: gw.account_values("DU1234567"), timeout=10)
    tags = {v["tag"] for v in values}
    assert {"NetLiquidation", "TotalCashValue", "BuyingPower"} <= tags
    portfolio = session.call(lambda gw: gw.portfolio("DU1234567"), timeout=10)
    assert {p["symbol"] for p in portfolio} >= {"SPY"}
    assert session.call(lambda gw: gw.open_orders("DU1234567"), timeout=10) == []
    assert isinstance(session.call(lambda gw: gw.executions("DU1234567"), timeout=10), list)


def test_concurrent_identical_keyed_requests_do_not_hang(session: BrokerSession) -> None:
    results: list[object] = []

    def read() -> None:
        results.append(session.call(lambda gw: gw.executions(""), timeout=10))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert len(results) == 8


def test_reconnects_after_dropped_connections(session: BrokerSession, ibsim_server) -> None:
    ibsim_server.faults.drop_all()
    assert until(lambda: session.connects >= 2 and session.ready)


def test_reconnects_after_gateway_restart(session: BrokerSession, ibsim_server) -> None:
    ibsim_server.restart(keep_state=True)
    assert until(lambda: session.connects >= 2 and session.ready)


def test_call_in_flight_when_socket_drops_is_not_ready(session, ibsim_server) -> None:
    ibsim_server.faults.withhold_end("execDetailsEnd")
    timer = threading.Timer(0.5, ibsim_server.faults.drop_all)
    timer.start()
    with pytest.raises(GatewayNotReady):
        session.call(lambda gw: gw.executions("DU1234567"), timeout=10)
    ibsim_server.faults.release_ends()
    assert until(lambda: session.ready)


def test_call_past_its_deadline_times_out(session, ibsim_server) -> None:
    ibsim_server.faults.withhold_end("execDetailsEnd")
    with pytest.raises(IntentTimeout):
        session.call(lambda gw: gw.executions("DU1234567"), timeout=0.5)
    ibsim_server.faults.release_ends()


def test_connectivity_lost_then_restored(session, ibsim_server) -> None:
    ibsim_server.faults.connectivity_lost()
    assert until(lambda: not session.ready, 5)
    with pytest.raises(GatewayNotReady):
        session.call(lambda gw: gw.account_values("DU1234567"), timeout=5)
    ibsim_server.faults.connectivity_restored(data_lost=False)
    assert until(lambda: session.ready, 5)


def test_restored_with_data_lost_resyncs(session, ibsim_server) -> None:
    before = session.connects
    ibsim_server.faults.connectivity_blip(data_lost=True)
    assert until(lambda: session.connects > before and session.ready)


def test_port_open_but_not_logged_in_is_never_ready(ibsim_server) -> None:
    ibsim_server.faults.set_not_logged_in(True)
    s = BrokerSession(ibsim_server.host, ibsim_server.port, 12, connect_timeout=0.5, backoff=FAST)
    s.start()
    try:
        assert not s.wait_ready(2)
        with pytest.raises(GatewayNotReady):
            s.call(lambda gw: gw.account_values(""), timeout=1)
        ibsim_server.faults.set_not_logged_in(False)
        assert s.wait_ready(15)
    finally:
        s.stop()


def test_client_id_in_use_retries_until_free(ibsim_server) -> None:
    ibsim_server.faults.lock_client_id(13)
    s = BrokerSession(ibsim_server.host, ibsim_server.port, 13, connect_timeout=1, backoff=FAST)
    s.start()
    try:
        assert not s.wait_ready(1.5)
        ibsim_server.restart(keep_state=True)  # a restart frees locked ids
        assert s.wait_ready(15)
    finally:
        s.stop()
