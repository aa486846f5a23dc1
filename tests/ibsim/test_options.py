"""SPY's option chain: pricing, contracts, quotes and the ledger (no client library)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest

from ibsim import chain, options
from ibsim.model import ContractQuery, OrderRejected, OrderStatus, SecType
from tests.ibsim.test_broker import ACCOUNT, make_broker, req
from tests.ibsim.test_market import make_market

WEDNESDAY = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)
EXPIRY = "20261120"  # the Friday after WEDNESDAY


def _option(market, strike: float = 600.0, right: str = "C", expiry: str = EXPIRY):
    query = ContractQuery(symbol="SPY", sec_type="OPT", last_trade_date=expiry, strike=strike,
                          right=right, exchange="SMART")  # fmt: skip
    [inst] = market.catalog.resolve(query)
    return inst


# --- the model -------------------------------------------------------------------------------


def test_put_call_parity_and_implied_vol_round_trip():
    spot, strike, years, vol = 600.0, 590.0, 30 / 365, 0.2
    call = options.price("C", spot, strike, years, vol)
    put = options.price("P", spot, strike, years, vol)
    assert call - put == pytest.approx(spot - strike * math.exp(-options.RATE * years))
    assert options.implied_vol("C", spot, strike, years, call) == pytest.approx(vol, abs=1e-6)
    greeks = options.greeks("P", spot, strike, years, vol)
    assert -1 < greeks.delta < 0 < greeks.gamma
    assert greeks.theta < 0 < greeks.vega


def test_at_expiry_an_option_is_worth_its_intrinsic_value():
    assert options.price("C", 610.0, 600.0, 0.0, 0.2) == 10.0
    assert options.price("P", 610.0, 600.0, 0.0, 0.2) == 0.0


# --- the chain -------------------------------------------------------------------------------


def test_chain_lists_the_next_four_fridays_and_strikes_every_five():
    assert chain.expiries(date(2026, 11, 18)) == [
        date(2026, 11, 20), date(2026, 11, 27), date(2026, 12, 4), date(2026, 12, 11),
    ]  # fmt: skip
    assert chain.expiries(date(2026, 11, 20))[0] == date(2026, 11, 20)  # a Friday lists itself
    assert (chain.STRIKES[0], chain.STRIKES[-1], len(chain.STRIKES)) == (480.0, 720.0, 49)


def test_option_contract_and_its_con_id():
    market = make_market(WEDNESDAY)
    inst = _option(market, 605.0, "P")
    assert inst.sec_type == SecType.OPTION
    assert (inst.strike, inst.right, inst.multiplier) == (605.0, "P", 100.0)
    assert inst.local_symbol == "SPY   261120P00605000"  # the OCC symbol
    assert market.catalog.by_con_id(inst.con_id).local_symbol == inst.local_symbol
    assert chain.decode(inst.con_id) == (date(2026, 11, 20), 605.0, "P")
    assert chain.decode(756733) is None


def test_spy_alone_is_still_the_stock():
    market = make_market(WEDNESDAY)
    [inst] = market.catalog.resolve(ContractQuery(symbol="SPY", exchange="SMART"))
    assert inst.sec_type == SecType.STOCK
    calls = market.catalog.resolve(ContractQuery(symbol="SPY", sec_type="OPT", right="CALL",
                                                 last_trade_date=EXPIRY))  # fmt: skip
    assert len(calls) == len(chain.STRIKES)


def _at_the_money(market) -> float:
    spot = market.quote(market.catalog.by_con_id(chain.UNDERLYING_CON_ID)).last
    return min(chain.STRIKES, key=lambda k: abs(k - spot))


def test_option_quotes_follow_the_model():
    market = make_market(WEDNESDAY)
    inst = _option(market, _at_the_money(market))
    quote = market.quote(inst)
    model = market.option_greeks(inst, WEDNESDAY.timestamp())
    assert quote.bid <= model.price <= quote.ask
    assert quote.ask - quote.bid == pytest.approx(0.02)
    deep = market.quote(_option(market, 480.0, "P"))
    assert deep.bid >= 0
    comps = market.option_computations(inst, quote)
    assert comps["bid"].implied_vol < comps["model"].implied_vol < comps["ask"].implied_vol


# --- the ledger ------------------------------------------------------------------------------


def test_long_call_is_paid_in_full_and_counts_as_option_value():
    broker, _ = make_broker(when=WEDNESDAY)
    inst = _option(broker.market)
    contract = ContractQuery(con_id=inst.con_id, exchange="SMART")
    margin_before = broker.ledger.valuation(ACCOUNT).init_margin
    order = broker.place(req(1, contract=contract, qty=2))
    broker.process()
    assert order.status == OrderStatus.FILLED
    assert order.commission == 1.30  # 0.65 a contract (minimum 1.00)
    valuation = broker.ledger.valuation(ACCOUNT)
    assert valuation.init_margin == pytest.approx(margin_before)
    assert valuation.total("option_value") == pytest.approx(
        2 * 100 * broker.market.quote(inst).last
    )


def test_written_put_carries_the_underlyings_stock_margin():
    broker, _ = make_broker(when=WEDNESDAY)
    inst = _option(broker.market, 590.0, "P")
    margin_before = broker.ledger.valuation(ACCOUNT).init_margin
    broker.place(req(1, contract=ContractQuery(con_id=inst.con_id, exchange="SMART"),
                     action="SELL", qty=1))  # fmt: skip
    broker.process()
    spy = broker.market.catalog.by_con_id(chain.UNDERLYING_CON_ID)
    expected = 100 * broker.market.quote(spy).last * 0.25
    assert broker.ledger.valuation(ACCOUNT).init_margin - margin_before == pytest.approx(expected)


def test_an_expired_option_takes_no_orders():
    broker, _ = make_broker(when=datetime(2026, 11, 20, 21, 30, tzinfo=UTC))  # Friday 16:30
    inst = broker.market.catalog.by_con_id(chain.con_id(date(2026, 11, 20), 600.0, "C"))
    with pytest.raises(OrderRejected, match="has expired"):
        broker.place(req(1, contract=ContractQuery(con_id=inst.con_id, exchange="SMART")))
