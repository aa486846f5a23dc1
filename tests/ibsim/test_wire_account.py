"""Account and market-data subscriptions over a raw socket, plus the asyncio embedding."""

from __future__ import annotations

import asyncio
import struct

import ibsim
from ibsim import wire
from tests.ibsim.rawclient import RawClient

ACCOUNT = "DU1234567"


def test_account_updates_values_portfolio_time_end(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send("6", "2", "1", ACCOUNT)
        msgs = c.recv_until(lambda f: f[0] == "54")
    kinds = {m[0] for m in msgs}
    assert kinds == {"6", "7", "8", "54"}
    assert all(len(m) == 6 for m in msgs if m[0] == "6")
    assert all(len(m) == 20 for m in msgs if m[0] == "7")
    assert msgs[-1] == ["54", "1", ACCOUNT]


def test_account_updates_multi_and_cancel(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send("76", "1", "9", ACCOUNT, "", "1")
        msgs = c.recv_until(lambda f: f[0] == "74")
        assert all(len(m) == 8 and m[2] == "9" for m in msgs[:-1])
        assert msgs[-1] == ["74", "1", "9"]
        c.send("77", "1", "9")
        c.send("49", "1")
        assert c.recv()[0] == "49"


def test_account_summary_with_ledger_tags_and_cancel(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send("62", "1", "4", "All", "NetLiquidation,TotalCashValue,$LEDGER:ALL")
        msgs = c.recv_until(lambda f: f[0] == "64")
        rows = msgs[:-1]
        assert all(len(m) == 7 for m in rows)
        tags = {m[4] for m in rows}
        assert {"NetLiquidation", "TotalCashValue", "CashBalance"} <= tags
        c.send("63", "1", "4")
        c.send("49", "1")
        assert c.recv()[0] == "49"


def test_positions_then_cancel(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send("61", "1")
        msgs = c.recv_until(lambda f: f[0] == "62")
        assert [len(m) for m in msgs[:-1]] == [16, 16, 16]
        c.send("64", "1")


def test_unknown_account_is_a_request_error(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send("76", "1", "5", "DU0000000", "", "1")
        err = c.recv()
        assert err[:4] == ["4", "2", "5", "321"]


def test_market_data_snapshot_stream_and_cancel(sim):
    spy = ["756733", "", "", "", "0", "", "", "SMART", "", "USD", "", ""]
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send("1", "11", "3", *spy, "0", "", "1", "0", "")  # snapshot
        msgs = c.recv_until(lambda f: f[0] == "57")
        assert msgs[0] == ["58", "1", "3", "1"]
        assert {m[3] for m in msgs if m[0] == "1"} == {"1", "2", "4", "9"}
        c.send("1", "11", "4", *spy, "0", "", "0", "0", "")  # streaming
        c.recv_until(lambda f: f[0] == "46")
        sim.clock.advance(3600)
        assert c.recv_until(lambda f: f[0] == "1")[-1][2] == "4"  # an update arrives
        c.send("2", "2", "4")


def test_unknown_contract_market_data_is_200(sim):
    nope = ["0", "NOPE", "STK", "", "0", "", "", "SMART", "", "USD", "", ""]
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send("1", "11", "8", *nope, "0", "", "1", "0", "")
        assert c.recv()[:4] == ["4", "2", "8", "200"]


def test_asyncio_embedding_start_stop():
    async def main() -> list[str]:
        sim = ibsim.Simulator(port=0)
        await sim.start()
        try:
            reader, writer = await asyncio.open_connection(sim.host, sim.port)
            writer.write(b"API\0" + struct.pack(">I", 9) + b"v157..178")
            payload = await wire.read_payload(reader)
            writer.close()
            return wire.split_fields(payload)
        finally:
            await sim.stop()

    assert asyncio.run(main())[0] == "178"


def test_sim_call_runs_on_the_loop(sim):
    assert sim.call(lambda: sorted(sim.sim.clients)) == []
