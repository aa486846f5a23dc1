"""Golden frames: every message ibsim emits, field by field, at server versions 176 and 178.

Field counts include the message id (as in tws-protocol.md). Where a real gateway's frame was
recorded (tests/ibsim/data/recorded_176.json), ibsim's frame is compared with it directly.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ibsim import wire
from ibsim.messages import account, market, orders, session
from ibsim.model import (
    AccountValue,
    Bar,
    ContractQuery,
    Order,
    OrderStatus,
    PortfolioItem,
    Position,
    Quote,
)
from tests.ibsim import samples
from tests.ibsim.samples import ACCOUNT, EURUSD, MES, SPY

RECORDED = json.loads((Path(__file__).parent / "data" / "recorded_176.json").read_text())
VERSIONS = (176, 178)


def test_frame_is_length_prefixed_and_nul_terminated():
    assert wire.frame(["9", "1", "217"]) == b"\x00\x00\x00\x089\x001\x00217\x00"


def test_handshake_reply_has_exactly_two_fields():
    data = wire.handshake_reply(176, "20231021 13:28:15 EST")
    assert wire.split_fields(data[4:]) == ["176", "20231021 13:28:15 EST"]
    assert len(wire.split_fields(data[4:])) == len(RECORDED["handshake_reply"]) == 2


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"v157..178", wire.Hello(157, 178, "")),
        (b"v157..176 +PACEAPI", wire.Hello(157, 176, "+PACEAPI")),
        (b"v176", wire.Hello(176, 176, "")),
    ],
)
def test_parse_hello(payload, expected):
    assert wire.parse_hello(payload) == expected


@pytest.mark.parametrize("payload", [b"", b"x157..178", b"v178..157", b"v1..2..3"])
def test_parse_hello_rejects_garbage(payload):
    with pytest.raises(wire.ProtocolError):
        wire.parse_hello(payload)


@pytest.mark.parametrize(
    ("offer", "version"), [((157, 176), 176), ((157, 178), 178), ((157, 190), 178)]
)
def test_negotiate_takes_client_max_capped_at_178(offer, version):
    assert wire.negotiate(wire.Hello(*offer)) == version


def test_negotiate_answers_a_too_old_client_with_its_own_version_but_does_not_serve_it():
    assert wire.negotiate(wire.Hello(142, 163)) == 163
    assert not wire.served(163)
    assert wire.served(176)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0.0"), (412.5, "412.5"), (None, wire.UNSET_DOUBLE), (1e308 * 10, wire.UNSET_DOUBLE)],
)
def test_fmt_float_prints_like_java(value, text):
    assert wire.fmt_float(value) == text


def test_fmt_decimal_and_multiplier():
    assert [wire.fmt_decimal(100.0), wire.fmt_decimal(0.5), wire.fmt_decimal(None)] == [
        "100",
        "0.5",
        "",
    ]
    assert [wire.fmt_multiplier(1.0), wire.fmt_multiplier(5.0)] == ["", "5"]


# --- session ---------------------------------------------------------------------------------


def test_start_api_replies_match_the_recording():
    recorded = RECORDED["start_api_replies"]
    assert session.managed_accounts(["DU5509097"]) == recorded[0]
    assert session.next_valid_id(217) == recorded[1]
    assert len(session.error(-1, 2104, "Market data farm connection is OK:usfarm", 176)) == 6
    assert session.error(-1, 2104, "Market data farm connection is OK:usfarm", 176) == recorded[3]
    assert [code for code, _ in session.FARM_NOTICES] == [2104, 2106, 2158]


def test_error_has_advanced_reject_field_from_166():
    assert session.error(5, 201, "Order rejected - reason:x", 178) == [
        "4", "2", "5", "201", "Order rejected - reason:x", ""
    ]  # fmt: skip
    assert len(session.error(5, 201, "x", 165)) == 5


def test_current_time():
    assert session.current_time(1763479800) == ["49", "1", "1763479800"]


# --- account ---------------------------------------------------------------------------------


def test_position_layout():
    fields = account.position(Position(ACCOUNT, SPY, 100, 580.0))
    assert fields == [
        "61", "3", ACCOUNT, "756733", "SPY", "STK", "", "0", "", "", "ARCA", "USD", "SPY", "SPY",
        "100", "580.0",
    ]  # fmt: skip


def test_end_markers_match_the_recording():
    assert account.position_end() == RECORDED["position_end"]
    assert orders.open_order_end() == RECORDED["open_order_end"]
    assert orders.completed_orders_end() == RECORDED["completed_orders_end"]
    assert orders.exec_details_end(218) == RECORDED["exec_details_end"]
    assert account.account_download_end("DU5509097") == RECORDED["account_download_end"]
    assert account.account_update_multi_end(217) == RECORDED["account_update_multi_end"]
    assert account.account_summary_end(221) == RECORDED["account_summary_end"]
    assert account.account_update_time("13:26") == RECORDED["account_update_time"]


def test_account_rows_match_the_recording():
    value = AccountValue("AccruedDividend-C", "0.00", "GBP", "DU5509097")
    assert account.account_value(value) == RECORDED["account_value"]
    multi = AccountValue("AccountCode", "DU5509097", "", "DU5509097")
    assert account.account_update_multi(217, "", multi) == RECORDED["account_update_multi"]
    summary = AccountValue("AccountType", "PARTNERSHIP", "", "DU5509097")
    assert account.account_summary(221, summary) == RECORDED["account_summary"]


def test_portfolio_layout():
    item = PortfolioItem(ACCOUNT, MES, 2, 6012.25, 60122.5, 30000.0, 2.5, 0.0)
    fields = account.portfolio_value(item)
    assert len(fields) == 20
    assert fields[:14] == [
        "7", "8", "730283085", "MES", "FUT", "20261218", "0", "", "5", "", "USD", "MESZ6", "MES",
        "2",
    ]  # fmt: skip
    assert fields[-1] == ACCOUNT


# --- orders ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "count"), [(176, 136), (178, 135)])
def test_open_order_field_count(version, count):
    assert len(orders.open_order(samples.order(), ACCOUNT, version)) == count


def test_open_order_with_algo_params_grows_by_the_params():
    algo = ("Adaptive", (("adaptivePriority", "Normal"),))
    fields = orders.open_order(samples.order(algo=algo), ACCOUNT, 178)
    assert len(fields) == 135 + 3
    i = fields.index("Adaptive")
    assert fields[i : i + 4] == ["Adaptive", "1", "adaptivePriority", "Normal"]


def test_open_order_matches_the_recorded_frame():
    """Same order as the recording (EUR.USD MKT 100, clientId 0) -> the same 136 fields."""
    recorded = RECORDED["open_order"]
    base = samples.order(OrderStatus.PRE_SUBMITTED, inst=EURUSD, order_type="MKT", lmt_price=None)
    req = dataclasses.replace(
        base.request,
        client_id=0,
        order_id=219,
        order_ref="",
        account="DU5509097",
        contract=ContractQuery(exchange="IDEALPRO"),
    )
    o = Order(
        request=req,
        instrument=EURUSD,
        perm_id=665616366,
        status=OrderStatus.PRE_SUBMITTED,
        warning_text=recorded[108],
    )
    ours = orders.open_order(o, "DU5509097", 176)
    assert len(ours) == len(recorded) == 136
    differing = [i for i, (a, b) in enumerate(zip(ours, recorded, strict=True)) if a != b]
    assert differing == [93]  # the recorded order was a what-if order (whatIf=1)


def test_order_status_layout():
    o = samples.order(OrderStatus.FILLED)
    o.filled, o.avg_fill_price, o.last_fill_price = 100, 600.25, 600.25
    assert orders.order_status(o) == [
        "3", "7", "Filled", "100", "0", "600.25", "1000007", "0", "600.25", "1", "", "0.0",
    ]  # fmt: skip


@pytest.mark.parametrize(("version", "count"), [(176, 101), (178, 100)])
def test_completed_order_field_count(version, count):
    o = samples.order(OrderStatus.FILLED)
    o.completed_time, o.completed_status = "20261118 15:30:01 UTC", "Filled"
    fields = orders.completed_order(o, ACCOUNT, version)
    assert len(fields) == count
    assert fields[:3] == ["101", "756733", "SPY"]
    assert fields[22] == "run-42/leg-1"  # orderRef
    assert fields[-7:-5] == ["20261118 15:30:01 UTC", "Filled"]


@pytest.mark.parametrize(("version", "count"), [(176, 31), (178, 32)])
def test_exec_details_layout(version, count):
    fields = orders.exec_details(-1, samples.fill(), version)
    assert len(fields) == count
    assert fields[:16] == [
        "11", "-1", "7", "756733", "SPY", "STK", "", "0", "", "", "ARCA", "USD", "SPY", "SPY",
        "0000e0d5.6571a5c3.01.01", "20261118 15:30:01 UTC",
    ]  # fmt: skip
    assert fields[16:31] == [
        ACCOUNT, "ARCA", "BOT", "100", "600.25", "1000007", "1", "0", "100", "600.25",
        "run-42/leg-1", "", "", "", "2",
    ]  # fmt: skip


def test_commission_report_layout():
    assert orders.commission_report(samples.fill(realized=12.5)) == [
        "59", "1", "0000e0d5.6571a5c3.01.01", "1.0", "USD", "12.5", wire.UNSET_DOUBLE, "",
    ]  # fmt: skip
    assert orders.commission_report(samples.fill())[5] == wire.UNSET_DOUBLE


# --- market ----------------------------------------------------------------------------------


def test_contract_details_layout():
    fields = market.contract_details(3, SPY)
    assert len(fields) == 40
    assert fields[:14] == [
        "10", "3", "SPY", "STK", "", "0", "", "SMART", "USD", "SPY", "SPY", "SPY", "756733", "0.01",
    ]  # fmt: skip
    assert fields[19:21] == ["SPDR S&P 500 ETF TRUST", "ARCA"]
    assert fields[30] == "0"  # no secIds
    assert market.contract_details_end(3) == ["52", "1", "3"]


def test_stock_contract_details_carry_the_isin_in_sec_id_list():
    fields = market.contract_details(3, dataclasses.replace(SPY, isin="US78462F1030"))
    assert len(fields) == 42
    assert fields[30:33] == ["1", "ISIN", "US78462F1030"]
    assert fields[33] == "1"  # aggGroup follows the list


def test_future_contract_details_carry_expiry_and_multiplier():
    fields = market.contract_details(4, MES)
    assert fields[4] == "20261218 09:30 US/Central"
    assert fields[14] == "5"


def test_ticks_layout():
    quote = Quote(600.0, 600.02, 600.01, 598.0, 300, 400, 100, 12345)
    book = market.top_of_book(9, quote, delayed=False)
    assert book[1] == ["1", "6", "9", "1", "600.0", "300", "0"]
    assert book[2] == ["1", "6", "9", "2", "600.02", "400", "0"]
    assert book[8] == ["2", "6", "9", "8", "12345"]
    assert market.close_tick(9, quote, delayed=False) == ["1", "6", "9", "9", "598.0", "0", "0"]
    assert market.last_time_tick(9, 1763479800, delayed=False) == [
        "46", "6", "9", "45", "1763479800",
    ]  # fmt: skip
    delayed = market.top_of_book(9, quote, delayed=True)
    assert list(delayed) == [66, 67, 68, 74]
    assert market.close_tick(9, quote, delayed=True)[3] == "75"
    assert market.tick_req_params(9, 0.01) == ["81", "9", "0.01", "", "3"]
    assert market.market_data_type(9, 1) == ["58", "1", "9", "1"]
    assert market.tick_snapshot_end(9) == ["57", "1", "9"]


def test_historical_data_layout():
    bars = [Bar("20261117", 1.0, 2.0, 0.5, 1.5, 1000, 1.25, 10)] * 2
    fields = market.historical_data(5, "20261117", "20261118 16:00:00", bars)
    assert fields[:5] == ["17", "5", "20261117", "20261118 16:00:00", "2"]
    assert len(fields) == 5 + 8 * 2
    assert fields[5:13] == ["20261117", "1.0", "2.0", "0.5", "1.5", "1000", "1.25", "10"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_encoder_emits_strings_only(version):
    o = samples.order()
    frames = [
        orders.open_order(o, ACCOUNT, version),
        orders.completed_order(o, ACCOUNT, version),
        orders.exec_details(1, samples.fill(), version),
        session.error(1, 200, "x", version),
    ]
    for fields in frames:
        assert all(isinstance(f, str) for f in fields)
        assert all("\0" not in f for f in fields)
