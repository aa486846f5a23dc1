"""What-if orders: margins and commission from ibsim's model, nothing placed."""

from __future__ import annotations

import pytest

from tests.ibsim import iblib
from tests.ibsim.rawclient import RawClient, place_order_fields

pytestmark = pytest.mark.ib_client

ACCOUNT = "DU1234567"


@pytest.fixture
def spy(ib):
    contract = iblib.Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


def _figures(state) -> dict[str, float]:
    names = ("initMargin", "maintMargin", "equityWithLoan")
    return {
        f"{name}{when}": float(getattr(state, f"{name}{when}"))
        for name in names
        for when in ("Before", "Change", "After")
    }


def test_what_if_stock_order_reports_margin_and_commission(ib, spy, sim):
    [ticker] = ib.reqTickers(spy)
    orders_before = sim.broker.open_orders(None) + sim.broker.completed_orders()
    next_id = sim.broker.next_valid_id(1)
    state = ib.whatIfOrder(spy, iblib.MarketOrder("BUY", 100))
    f = _figures(state)
    # Stocks: 25 % of the value for initial and maintenance margin (ibsim's default model).
    assert f["initMarginChange"] == pytest.approx(100 * ticker.ask * 0.25, rel=1e-3)
    assert f["maintMarginChange"] == pytest.approx(100 * ticker.ask * 0.25, rel=1e-3)
    for name in ("initMargin", "maintMargin", "equityWithLoan"):
        assert f[f"{name}After"] == pytest.approx(f[f"{name}Before"] + f[f"{name}Change"], abs=0.02)
    assert float(state.minCommission) == float(state.maxCommission) == 0.35  # 0.0035 a share
    assert state.commissionCurrency == "USD"
    # Nothing was placed: no order, no fill, no id taken.
    assert sim.broker.open_orders(None) + sim.broker.completed_orders() == orders_before
    assert sim.broker.next_valid_id(1) == next_id


def test_what_if_of_a_closing_sell_frees_margin(ib, spy):
    state = ib.whatIfOrder(spy, iblib.LimitOrder("SELL", 100, 1.0))  # the 100 SPY held
    assert float(state.initMarginChange) < 0


def test_what_if_future_uses_the_per_contract_margin(ib):
    [mes] = ib.reqContractDetails(iblib.Future("MES", exchange="CME"))[:1]
    state = ib.whatIfOrder(mes.contract, iblib.MarketOrder("BUY", 2))
    assert float(state.initMarginChange) == pytest.approx(2 * 2200.0)


def test_what_if_of_an_unknown_contract_is_an_error(ib):
    with pytest.raises(iblib.RequestError) as info:
        ib.whatIfOrder(iblib.Stock("NOSUCH", "SMART", "USD"), iblib.MarketOrder("BUY", 1))
    assert info.value.code == 200


@pytest.mark.parametrize(("version", "count"), [(176, 136), (178, 135)])
def test_what_if_open_order_has_the_reference_field_count(sim, version, count):
    with RawClient(sim.host, sim.port) as c:
        c.connect(offer=f"v157..{version}".encode())
        c.send(*_what_if_fields(version))
        reply = c.recv()
        assert reply[0] == "5"
        assert len(reply) == count


def _what_if_fields(version: int) -> list[str]:
    """A placeOrder for 10 SPY at market with whatIf=1, laid out as ib_async sends it."""
    spy = {"symbol": "SPY", "secType": "STK", "exchange": "SMART", "currency": "USD"}
    return place_order_fields(9, spy, version, totalQuantity=10, account=ACCOUNT, whatIf=1)


def test_what_if_e_mini_margin_is_ten_micro_contracts(ib):
    [es] = ib.reqContractDetails(iblib.Future("ES", "202612", "CME"))
    state = ib.whatIfOrder(es.contract, iblib.MarketOrder("BUY", 1))
    assert float(state.initMarginChange) == pytest.approx(10 * 2200.0)
