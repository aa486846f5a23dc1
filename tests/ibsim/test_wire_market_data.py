"""reqMktData on the wire: what is sent, how often, and when nothing more comes."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest

import ibsim
from ibsim import scenario as scenario_mod
from tests.ibsim.rawclient import RawClient

SPY = ["756733", "", "", "", "0", "", "", "SMART", "", "USD", "", ""]
EUR = ["12087792", "", "", "", "0", "", "", "IDEALPRO", "", "", "", ""]
NIGHT = datetime(2026, 11, 19, 3, 0, tzinfo=UTC)  # 22:00 New York: stocks closed
QUIET = 0.35  # seconds: more than one sampling interval (250 ms)


def _req(c: RawClient, req_id: int, contract=SPY, generic="", snapshot="0", regulatory="0"):
    c.send("1", "11", req_id, *contract, "0", generic, snapshot, regulatory, "")


def _ticks(msgs: list[list[str]], msg_id: str = "1") -> list[str]:
    """Tick types of the messages with this id (1 price, 2 size, 45 generic, 46 string)."""
    return [m[3] for m in msgs if m[0] == msg_id]


def test_stream_sends_each_field_once_then_only_changes_and_the_close_once(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        _req(c, 4)
        first = c.recv_until(lambda f: f[:4] == ["1", "6", "4", "9"])  # the close comes last
        first += c.recv_for(0.1)
        assert first[:2] == [["58", "1", "4", "1"], ["81", "4", "0.01", "", "3"]]
        assert sorted(_ticks(first)) == ["1", "2", "4", "9"]  # bid, ask, last, close
        assert _ticks(first, "2") == ["8"]  # volume
        assert _ticks(first, "46") == ["45"]  # last trade time
        assert c.recv_for(QUIET) == []  # the clock stands still: nothing changed, nothing sent
        sim.clock.advance(60)
        later = c.recv_for(QUIET)
        assert later
        assert "9" not in _ticks(later)  # the close came once
        assert len(later) <= 6


def test_stream_is_sampled_not_sent_on_every_change(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        _req(c, 4)
        c.recv_until(lambda f: f[:4] == ["1", "6", "4", "9"])
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:  # the price path moves a second every 10 ms
            sim.clock.advance(1)
            time.sleep(0.01)
        bids = _ticks(c.recv_for(QUIET)).count("1")
        assert 1 <= bids <= 4  # a sample every 250 ms, not one message per change


@pytest.mark.parametrize(("snapshot", "regulatory"), [("1", "0"), ("0", "1")])
def test_snapshots_end_and_then_nothing_more(sim, snapshot, regulatory):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        _req(c, 3, snapshot=snapshot, regulatory=regulatory)
        msgs = c.recv_until(lambda f: f[0] == "57")
        assert sorted(_ticks(msgs)) == ["1", "2", "4", "9"]
        sim.clock.advance(3600)
        assert c.recv_for(QUIET) == []


def test_generic_ticks_rt_volume_shortable_and_misc_stats(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        _req(c, 5, generic="233,236,165")
        msgs = c.recv_until(lambda f: f[:4] == ["2", "6", "5", "21"])  # average volume: last
        [rt_volume] = [m[4] for m in msgs if m[:4] == ["46", "6", "5", "48"]]
        price, size, millis, volume, vwap, single = rt_volume.split(";")
        assert min(float(price), float(size), float(volume), float(vwap)) > 0
        assert int(millis) // 1000 == int(sim.clock.now().timestamp())
        assert single == "true"
        assert ["45", "6", "5", "46", "3.0"] in msgs  # shortable
        assert "89" in _ticks(msgs, "2")  # shortable shares
        assert {"15", "16", "17", "18", "19", "20"} <= set(_ticks(msgs))  # 13/26/52 weeks
        assert "21" in _ticks(msgs, "2")  # average volume
        lows = {m[3]: float(m[4]) for m in msgs if m[0] == "1" and m[3] in ("15", "19")}
        assert lows["19"] <= lows["15"]  # a year's low is at most a quarter's


def test_mdoff_sends_only_the_generic_ticks(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        _req(c, 6, generic="mdoff,233")
        msgs = c.recv_until(lambda f: f[0] == "46")
        msgs += c.recv_for(0.1)
        assert _ticks(msgs) == []
        assert _ticks(msgs, "46") == ["48"]


@pytest.mark.parametrize(
    ("contract", "generic", "snapshot", "text"),
    [
        (SPY, "100", "0", "Incorrect generic tick list of 100"),
        (EUR, "236", "0", "Incorrect generic tick list of 236"),
        (SPY, "233", "1", "not applicable to generic ticks"),
    ],
)
def test_refused_generic_ticks_are_a_clear_error(sim, contract, generic, snapshot, text):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        _req(c, 7, contract=contract, generic=generic, snapshot=snapshot)
        error = c.recv()
        assert error[:4] == ["4", "2", "7", "321"]
        assert text in error[4]
        assert c.recv_for(0.1) == []  # a subscription would have answered at once


def test_frozen_type_is_live_while_trading_and_frozen_after_hours(sim):
    with RawClient(sim.host, sim.port) as c:
        c.connect()
        c.send("59", "1", "2")  # reqMarketDataType(FROZEN)
        _req(c, 8)
        assert c.recv()[:4] == ["58", "1", "8", "1"]  # live while the market trades
        c.recv_until(lambda f: f[:4] == ["1", "6", "8", "9"])
        sim.clock.set(NIGHT)
        assert ["58", "1", "8", "2"] in c.recv_for(QUIET)


def _without(tmp_path, clock, **options):
    sc = scenario_mod.load("default")
    sc = dataclasses.replace(sc, options=dataclasses.replace(sc.options, **options))
    return ibsim.run_in_thread(sc, state_dir=tmp_path, clock=clock)


@pytest.fixture
def unpaid(tmp_path, clock):
    """A login without live market data subscriptions."""
    with _without(tmp_path, clock, live_market_data=False) as running:
        yield running


def test_without_any_data_type_1_is_354_and_type_3_is_10168(tmp_path, clock):
    none = _without(tmp_path, clock, live_market_data=False, delayed_market_data=False)
    with none as sim, RawClient(sim.host, sim.port) as c:
        c.connect()
        _req(c, 11)
        error = c.recv()
        assert error[:4] == ["4", "2", "11", "354"]
        assert "Delayed market data is available" not in error[4]
        c.send("59", "1", "3")
        _req(c, 12)
        error = c.recv()
        assert error[:4] == ["4", "2", "12", "10168"]
        assert "Delayed market data is not enabled" in error[4]
        assert c.recv_for(QUIET) == []  # no subscription was made


def test_without_live_data_type_1_is_354_and_type_3_is_delayed(unpaid):
    with RawClient(unpaid.host, unpaid.port) as c:
        c.connect()
        _req(c, 9)
        error = c.recv()
        assert error[:4] == ["4", "2", "9", "354"]
        assert error[4].endswith("Delayed market data is available.")
        c.send("59", "1", "3")
        _req(c, 10, snapshot="1")
        msgs = c.recv_until(lambda f: f[0] == "57")
        assert msgs[0] == ["58", "1", "10", "3"]
        assert sorted(_ticks(msgs)) == ["66", "67", "68", "75"]  # the delayed tick types
