"""The risk gate's rules on plain numbers, and market hours from the exchange calendars."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from worker import market_hours
from worker.config import trading_rules
from worker.errors import ConfigInvalid, MarketClosed, RiskRefused
from worker.risk import AccountView, Blackout, OrderView, RiskConfig, RiskGate

OPEN = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)  # Wednesday 10:30 New York
SPY = {"con_id": 1, "symbol": "SPY", "sec_type": "STK", "exchange": "SMART", "currency": "USD"}


def account(now: datetime = OPEN, **kw) -> AccountView:
    base = {"base_currency": "USD", "net_liquidation": 100_000.0, "gross_position_value": 0.0}
    return AccountView(now=now, fx={"EUR": 1.1}, **{**base, **kw})


def order(quantity: float = 10, price: float = 500.0, **kw) -> OrderView:
    return OrderView(**{**SPY, "action": "BUY", "quantity": quantity, "price": price, **kw})


def failing(checks) -> list[str]:
    return [c.rule for c in checks if not c.ok]


def test_an_order_inside_every_limit_passes() -> None:
    gate = RiskGate(RiskConfig(max_order_notional=10_000, max_position_notional=20_000))
    checks = gate.order_checks(order(), account())
    assert failing(checks) == []
    gate.enforce(checks)


@pytest.mark.parametrize(
    ("config", "view", "rule"),
    [
        ({"max_order_notional": 4_000}, {}, "max_order_notional"),
        ({"max_position_notional": 6_000}, {"positions": {1: 5.0}}, "max_position_notional"),
        ({"allowed_sec_types": ["STK"]}, {}, "allowed_sec_types"),
        ({"allowed_exchanges": ["IDEALPRO"]}, {}, "allowed_exchanges"),
    ],
)
def test_each_limit_refuses_naming_rule_limit_and_value(config, view, rule) -> None:
    gate = RiskGate(RiskConfig(**config))
    sec_type = "FUT" if rule == "allowed_sec_types" else "STK"
    checks = gate.order_checks(order(sec_type=sec_type), account(**view))
    assert failing(checks) == [rule]
    with pytest.raises(RiskRefused) as refused:
        gate.enforce(checks)
    assert rule in refused.value.message
    [bad] = [c for c in refused.value.details["checks"] if not c["ok"]]
    assert set(bad) >= {"rule", "limit", "value"}


def test_notional_is_converted_to_the_base_currency() -> None:
    gate = RiskGate(RiskConfig(max_order_notional=5_400))
    eur = order(currency="EUR")  # 10 x 500 EUR = 5,500 USD at 1.1
    assert failing(gate.order_checks(eur, account())) == ["max_order_notional"]
    with pytest.raises(RiskRefused, match="GBP"):
        gate.order_checks(order(currency="GBP"), account())


def test_a_sell_that_reduces_a_position_is_judged_after_the_order() -> None:
    gate = RiskGate(RiskConfig(max_position_notional=6_000))
    reduce = order(action="SELL", quantity=5)
    assert failing(gate.order_checks(reduce, account(positions={1: 15.0}))) == []


def test_gross_leverage_after_the_plan() -> None:
    gate = RiskGate(RiskConfig(max_gross_leverage=1.0))
    big = order(quantity=300)  # 150,000 on 100,000
    [check] = gate.plan_checks([big], account())
    assert not check.ok
    assert check.value == 1.5


def test_a_closed_market_refuses_or_skips_as_configured() -> None:
    thanksgiving = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
    checks = RiskGate(RiskConfig()).order_checks(order(), account(thanksgiving))
    assert failing(checks) == ["market_hours"]
    with pytest.raises(RiskRefused):
        RiskGate(RiskConfig()).enforce(checks)
    with pytest.raises(MarketClosed):
        RiskGate(RiskConfig(when_closed="skip")).enforce(checks)


@pytest.mark.parametrize(
    ("when", "window"),
    [
        (datetime(2026, 11, 18, 5, 30, tzinfo=UTC), "blackout:nightly_reset"),  # 00:30 NY
        (datetime(2026, 11, 21, 6, 0, tzinfo=UTC), "blackout:weekend_maintenance"),  # Sat 01:00
    ],
)
def test_ibs_reset_windows_refuse_new_orders(when, window) -> None:
    checks = RiskGate(RiskConfig()).time_checks("CASH", when)
    assert window in failing(checks)


def test_a_blackout_past_midnight_covers_both_days() -> None:
    night = Blackout(name="n", days=["fri"], start=time(23, 0), end=time(3, 0))
    friday_late = datetime(2026, 11, 21, 4, 30, tzinfo=UTC)  # Fri 23:30 NY
    saturday_early = datetime(2026, 11, 21, 7, 30, tzinfo=UTC)  # Sat 02:30 NY
    saturday_late = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)  # Sat 04:00 NY
    assert night.covers(friday_late)
    assert night.covers(saturday_early)
    assert not night.covers(saturday_late)


@pytest.mark.parametrize(
    ("sec_type", "when", "expected"),
    [
        ("STK", "2026-11-18T15:30", True),
        ("STK", "2026-11-26T15:30", False),  # Thanksgiving
        ("STK", "2026-11-27T19:00", False),  # the early close at 13:00
        ("STK", "2026-11-18T22:00", False),
        ("FUT", "2026-11-18T22:30", False),  # Globex's daily halt
        ("FUT", "2026-11-18T02:00", True),
        ("CASH", "2026-11-21T15:00", False),  # Saturday
        ("CASH", "2026-11-26T15:00", True),  # FX trades on US holidays
    ],
)
def test_market_hours(sec_type, when, expected) -> None:
    moment = datetime.fromisoformat(when).replace(tzinfo=UTC)
    assert market_hours.is_open(sec_type, moment) is expected


def test_trading_rules_keep_the_earlier_systems_keys() -> None:
    rules = trading_rules(
        {
            "account": "DU1",
            "tradingEnabled": False,
            "exposure": {"overall": 0.8, "strategies": {"spy_macd_vixy": 0.5}},
            "marketDataType": 3,
            "adaptivePriority": "Patient",
            "cashBalanceThresholdInBaseCurrency": 1000,
            "retryCheckMinutes": 5,
            "risk": {"max_order_notional": 50_000},
            "somethingNew": 1,
        }
    )
    assert rules.trading_enabled is False
    assert rules.exposure.strategies == {"spy_macd_vixy": 0.5}
    assert (rules.market_data_type, rules.adaptive_priority) == (3, "Patient")
    assert rules.risk.max_order_notional == 50_000
    with pytest.raises(ConfigInvalid, match="risk"):
        trading_rules({"risk": {"max_order_notional": "lots"}})
