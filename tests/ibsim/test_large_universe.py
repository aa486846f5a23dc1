"""Synthetic stocks for large universes: the scenario key ``extra_stocks`` and the
``large_universe`` built-in scenario, checked through the client library."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import ibsim
from ibsim import chain, scenario
from ibsim.catalog import synthetic_stocks
from ibsim.market import Catalog, Clock
from ibsim.model import UnknownContract
from tests.ibsim import iblib
from tests.ibsim.iblib import wait_for

ACCOUNT = "DU4567890"
ACCOUNTS = [{"id": "DU1234567"}]


@pytest.fixture
def sim(tmp_path, clock: Clock) -> Iterator[ibsim.ThreadedSimulator]:
    """The large_universe scenario (overrides conftest's default-scenario ``sim``)."""
    with ibsim.run_in_thread(
        "large_universe", state_dir=tmp_path, clock=clock, process_interval=0.02
    ) as running:
        yield running


# --- the scenario and the catalog ------------------------------------------------------------


def test_large_universe_is_one_rich_account_and_120_stocks() -> None:
    sc = scenario.load("large_universe")
    assert "large_universe" in scenario.available()
    (account,) = sc.accounts
    assert (account.id, account.base_currency) == (ACCOUNT, "USD")
    assert account.cash == {"USD": 5_000_000.0}
    assert account.positions == ()
    assert sc.extra_stocks == scenario.ExtraStocks(prefix="U", count=120)
    assert sc.options.reject_day_mkt_when_closed is False


def test_extra_stocks_join_the_builtin_catalog_without_conid_clashes() -> None:
    builtin = Catalog.builtin()
    extended = Catalog.builtin(extra_stocks=scenario.load("large_universe").extra_stocks)
    added = [i for i in extended.all() if i.con_id not in {b.con_id for b in builtin.all()}]
    assert [i.symbol for i in added] == [f"U{n:03d}" for n in range(1, 121)]
    assert len(extended.all()) == len(builtin.all()) + 120  # no conId shared with a builtin
    u001 = extended.find("U001")
    assert (u001.exchange, u001.primary_exchange, u001.currency) == ("SMART", "NYSE", "USD")
    assert u001.long_name == "IBSIM SYNTHETIC STOCK U001"
    spy = builtin.find("SPY")
    assert (u001.order_types, u001.valid_exchanges) == (spy.order_types, spy.valid_exchanges)
    assert u001.market_rule_ids == spy.market_rule_ids
    with pytest.raises(UnknownContract):
        builtin.find("U001")  # only a scenario with extra_stocks has them


def test_synthetic_conids_are_stable_and_distinct_per_prefix() -> None:
    assert [i.con_id for i in synthetic_stocks("U", 3)] == [
        i.con_id for i in synthetic_stocks("U", 120)[:3]
    ]
    ids = {i.con_id for prefix in ("U", "V", "UA", "A") for i in synthetic_stocks(prefix, 1000)}
    assert len(ids) == 4000
    highest = synthetic_stocks("ZZZZ", 1000)[-1]
    assert highest.symbol == "ZZZZ1000"
    lowest = synthetic_stocks("A", 1)[0].con_id
    futures = [i.con_id for i in Catalog.builtin().all() if i.sec_type.value == "FUT"]
    assert max(futures) < lowest  # synthetic conIds lie between the futures' ...
    assert highest.con_id < chain.BASE_ID  # ... and the options'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"prefix": "u", "count": 10}, "uppercase"),
        ({"prefix": "", "count": 10}, "uppercase"),
        ({"prefix": "ABCDE", "count": 10}, "uppercase"),
        ({"prefix": "U1", "count": 10}, "uppercase"),
        ({"prefix": 7, "count": 10}, "uppercase"),
        ({"count": 10}, "uppercase"),
        ({"prefix": "U", "count": 0}, "from 1 to 1000"),
        ({"prefix": "U", "count": 1001}, "from 1 to 1000"),
        ({"prefix": "U", "count": "120"}, "from 1 to 1000"),
        ({"prefix": "U", "count": True}, "from 1 to 1000"),
        ({"prefix": "U"}, "from 1 to 1000"),
        ({"prefix": "U", "count": 10, "name": "x"}, "unknown keys"),
        (["U", 10], "mapping"),
    ],
)
def test_bad_extra_stocks_are_refused(extra: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scenario.from_dict({"accounts": ACCOUNTS, "extra_stocks": extra})


def test_extra_stocks_are_optional() -> None:
    assert scenario.from_dict({"accounts": ACCOUNTS}).extra_stocks is None
    sc = scenario.from_dict({"accounts": ACCOUNTS, "extra_stocks": {"prefix": "ABCD", "count": 1}})
    assert sc.extra_stocks == scenario.ExtraStocks("ABCD", 1)


# --- through the client library --------------------------------------------------------------


@pytest.mark.ib_client
def test_synthetic_stocks_resolve_quote_and_fill(ib) -> None:
    [first] = ib.reqContractDetails(iblib.Stock("U001", "SMART", "USD"))
    [last] = ib.reqContractDetails(iblib.Stock("U120", "SMART", "USD"))
    assert first.contract.conId != last.contract.conId
    assert (first.contract.primaryExchange, last.contract.primaryExchange) == ("NYSE", "NYSE")
    assert last.longName == "IBSIM SYNTHETIC STOCK U120"

    ticker = ib.reqMktData(last.contract)
    wait_for(ib, lambda: ticker.bid > 0 and ticker.ask > 0)
    assert 50 < ticker.bid <= ticker.ask < 200  # unseeded stocks quote around 100

    trade = ib.placeOrder(last.contract, iblib.MarketOrder("BUY", 10, account=ACCOUNT))
    wait_for(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills)
    assert trade.orderStatus.filled == 10
    wait_for(ib, lambda: [(p.contract.symbol, p.position) for p in ib.positions()])
    assert [(p.contract.symbol, p.position) for p in ib.positions()] == [("U120", 10.0)]


@pytest.mark.ib_client
def test_the_default_scenario_has_no_synthetic_stocks(tmp_path, clock: Clock) -> None:
    with ibsim.run_in_thread(state_dir=tmp_path, clock=clock) as default:
        client = iblib.IB()
        try:
            iblib.connect(client, default.host, default.port)
            with pytest.raises(iblib.RequestError) as info:
                client.reqContractDetails(iblib.Stock("U001", "SMART", "USD"))
            assert info.value.code == 200
        finally:
            client.disconnect()
