"""The session over a raw socket: handshake, startApi, client ids, pacing, malformed input."""

from __future__ import annotations

import logging
import socket
import struct
import time

import pytest

from tests.ibsim.rawclient import RawClient


def _client(sim, timeout: float = 5.0) -> RawClient:
    return RawClient(sim.host, sim.port, timeout)


@pytest.mark.parametrize(("offer", "version"), [(b"v157..176", "176"), (b"v157..178", "178")])
def test_handshake_negotiates_and_answers_two_fields(sim, offer, version):
    with _client(sim) as c:
        reply = c.handshake(offer)
    assert len(reply) == 2
    assert reply[0] == version


def test_handshake_accepts_connect_options(sim):
    with _client(sim) as c:
        assert c.handshake(b"v157..178 +PACEAPI")[0] == "178"


def test_start_api_sends_accounts_next_id_and_farm_notices(sim):
    with _client(sim) as c:
        msgs = c.connect(client_id=3)
    assert msgs[0] == ["15", "1", "DU1234567"]
    assert msgs[1][:2] == ["9", "1"]
    assert int(msgs[1][2]) >= 1
    notices = [m for m in msgs if m[0] == "4"]
    assert [m[3] for m in notices] == ["2104", "2106", "2158"]
    assert all(len(m) == 6 and m[2] == "-1" for m in notices)


def test_duplicate_client_id_gets_326_and_is_closed(sim):
    with _client(sim) as first, _client(sim) as second:
        first.connect(client_id=5)
        second.handshake()
        second.send("71", "2", 5, "")
        err = second.recv()
        assert err[:4] == ["4", "2", "-1", "326"]
        assert second.wait_closed()
        first.send("49", "1")  # the first client is unaffected
        assert first.recv()[0] == "49"


def test_thirty_three_clients_are_one_too_many(sim):
    clients = [_client(sim) for _ in range(33)]
    try:
        for i, c in enumerate(clients[:32]):
            c.connect(client_id=100 + i)
        last = clients[32]
        last.handshake()
        last.send("71", "2", 999, "")
        assert last.recv()[3] == "502"
        assert last.wait_closed()
    finally:
        for c in clients:
            c.close()


def test_client_id_is_free_again_after_disconnect(sim):
    with _client(sim) as c:
        c.connect(client_id=8)
    with _client(sim) as c:
        assert c.connect(client_id=8)[0][0] == "15"


def test_next_valid_id_persists_per_client_across_reconnects(sim):
    with _client(sim) as c:
        first = int(c.connect(client_id=4)[1][2])
        c.send("8", "1", "1")
        assert int(c.recv()[2]) == first
    with _client(sim) as c:
        assert int(c.connect(client_id=4)[1][2]) == first


def test_current_time_comes_from_the_simulation_clock(sim, clock):
    with _client(sim) as c:
        c.connect()
        c.send("49", "1")
        assert c.recv() == ["49", "1", str(int(clock.now().timestamp()))]


def test_unknown_message_is_answered_not_fatal(sim):
    with _client(sim) as c:
        c.connect()
        c.send("150", "17")  # no such request in the protocol ibsim speaks
        err = c.recv()
        assert err[:4] == ["4", "2", "-1", "503"]
        c.send("49", "1")
        assert c.recv()[0] == "49"


def test_malformed_frame_closes_only_that_connection(sim):
    with _client(sim) as bad, _client(sim) as good:
        good.connect(client_id=1)
        bad.connect(client_id=2)
        bad.send_raw(b"not-a-number\0")
        assert bad.wait_closed()
        good.send("49", "1")
        assert good.recv()[0] == "49"


def test_garbage_before_handshake_is_closed(sim):
    with _client(sim) as c:
        c.sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert c.wait_closed()


def test_bad_request_fields_get_an_error_not_a_crash(sim):
    with _client(sim) as c:
        c.connect()
        c.send("9", "8", "x")  # reqContractDetails with a non-numeric reqId
        assert c.recv()[3] == "321"


def test_more_than_50_messages_per_second_is_error_100(sim):
    with _client(sim) as c:
        c.connect()
        for _ in range(60):
            c.send("49", "1")
        msgs = [c.recv() for _ in range(61)]
        errors = [m for m in msgs if m[0] == "4"]
        assert [m[3] for m in errors] == ["100"]
        c.send("49", "1")
        assert c.recv()[0] == "49"  # still connected


def test_sustained_flooding_disconnects(sim):
    with _client(sim) as c:
        c.connect()
        c.sock.sendall(b"".join(b"\0\0\0\x0549\x001\x00" for _ in range(150)))
        assert c.wait_closed()


def test_error_100_reaches_a_flooding_client_before_a_clean_close(sim):
    """Even when the server stops reading with half a megabyte unread (which, closed
    abruptly, resets the connection and can discard what was sent last)."""
    with _client(sim) as c:
        c.connect()
        c.sock.sendall(b"".join(b"\0\0\0\x0549\x001\x00" for _ in range(60_000)))
        got, how = c.read_to_close()
        assert how == "eof"
        assert sorted({m[3] for m in got if m[0] == "4"}) == ["100"]
        assert got[-1][:4] == ["4", "2", "-1", "100"]  # the last word before the close


def test_pace_api_option_paces_a_burst_without_error_100(sim):
    with _client(sim) as c:
        c.connect(offer=b"v157..178 +PACEAPI")
        started = time.monotonic()
        for _ in range(60):
            c.send("49", "1")
        msgs = [c.recv() for _ in range(60)]
        assert {m[0] for m in msgs} == {"49"}  # every request answered, no error 100
        assert time.monotonic() - started >= 0.9  # the last ten waited for the next second
        c.send("49", "1")
        assert c.recv()[0] == "49"


@pytest.mark.parametrize("offer", [b"v142..163", b"v100..175"])
def test_too_old_a_client_is_refused_after_start_api(sim, offer):
    with _client(sim) as c:
        version = int(c.handshake(offer)[0])
        assert version == int(offer.split(b"..")[1])  # answered in its own version
        c.send("71", "2", "1", "")
        error = c.recv()
        assert error[:4] == ["4", "2", "-1", "502"]
        assert len(error) == (5 if version < 166 else 6)  # advancedOrderRejectJson from v166
        assert c.wait_closed()


def test_a_client_that_vanishes_is_cleaned_up_quietly(sim, caplog):
    """A reset connection with market data still streaming: no asyncio warning per write."""
    spy = ["0", "SPY", "STK", "", "0", "", "", "SMART", "", "USD", "", ""]
    caplog.set_level(logging.WARNING)
    for client_id in (10, 11, 12):
        c = _client(sim)
        c.connect(client_id=client_id)
        c.send("1", "11", "5", *spy, "0", "", "0", "0", "")  # stream SPY
        c.recv()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # linger 0: the peer resets the connection, as a crashed client does
        for _ in range(20):
            sim.clock.advance(1)  # new quotes (six messages) to write on every tick
            time.sleep(0.005)
        assert not sim.call(lambda cid=client_id: cid in sim.sim.clients)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("asyncio")] == []
