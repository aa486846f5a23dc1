"""Every request ibsim does not model gets an answer a waiting client can match (raw wire)."""

from __future__ import annotations

import pytest

from ibsim.handlers import REQ_ID_AT
from ibsim.handlers.unmodelled import EMPTY, ERRORS, SILENT
from tests.ibsim.rawclient import RawClient

REQ_ID = "77"
WARNINGS = {105, 110, 165, 321, 329, 399, 404, 434, 492, 10167}  # ib_async keeps waiting on these


def _request(msg_id: int) -> list[str]:
    """The message with the request id where the library puts it, padded with empties."""
    at = REQ_ID_AT.get(msg_id)
    fields = [str(msg_id)] + ["1"] * ((at or 1) - 1)
    if at is not None:
        fields.append(REQ_ID)
    return fields + [""] * 30


@pytest.mark.parametrize("msg_id", sorted(ERRORS))
def test_unmodelled_data_is_an_error_naming_the_request(sim, msg_id):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send(*_request(msg_id))
        reply = c.recv()
        assert reply[:3] == ["4", "2", REQ_ID]
        code = int(reply[3])
        assert code not in WARNINGS
        assert not 2100 <= code < 2200


@pytest.mark.parametrize("msg_id", sorted(EMPTY))
def test_unmodelled_lists_come_back_empty(sim, msg_id):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send(*_request(msg_id))
        reply = c.recv()
        assert reply[0] != "4"
        assert REQ_ID in reply or msg_id not in REQ_ID_AT


def test_silent_requests_answer_nothing_and_the_session_goes_on(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        for msg_id in sorted(SILENT):
            c.send(*_request(msg_id))
        c.send("49", "1")
        assert c.recv()[0] == "49"


def test_positions_multi(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send("74", "1", "5", "DU1234567", "")
        msgs = c.recv_until(lambda f: f[0] == "72")
        assert msgs[-1] == ["72", "1", "5"]
        rows = msgs[:-1]
        assert rows
        assert all(len(m) == 18 and m[:4] == ["71", "1", "5", "DU1234567"] for m in rows)
        assert {m[5] for m in rows} >= {"SPY"}
        c.send("74", "1", "6", "DU1234567", "some-model")
        assert c.recv() == ["72", "1", "6"]


def test_family_codes_and_fa_refusal(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send("80")
        assert c.recv() == ["78", "1", "DU1234567", ""]
        c.send("18", "1", "1")  # requestFA on a non-FA login
        assert c.recv()[:4] == ["4", "2", "-1", "321"]
