"""fixed_weights: weights from config, resolved to instruments, validated."""

from __future__ import annotations

from typing import Any

import pytest

from worker.strategies import DataNeed, Instrument, MarketData, StrategyFailed, evaluate, get
from worker.strategies import needs as declared_needs

STRATEGY = get("fixed_weights")


def run(config: dict[str, Any]):
    return evaluate(STRATEGY, MarketData(), config, None)


def test_sixty_forty_is_always_fresh() -> None:
    result = run({"weights": {"SPY": 0.6, "IEF": 0.4}})
    assert result.fresh
    assert result.weights == {"SPY:STK:USD": 0.6, "IEF:STK:USD": 0.4}
    assert result.instruments["IEF:STK:USD"] == Instrument(symbol="IEF")
    assert result.state == {}


def test_keys_details_and_shorts() -> None:
    config = {
        "weights": {"MES": 0.3, "EZU:STK:EUR": -0.2, "SPY": 0.0},
        "instruments": {
            "MES": {"sec_type": "FUT", "exchange": "CME", "last_trade_date": "202612"},
        },
    }
    result = run(config)
    assert result.weights == {"MES:FUT:USD:202612": 0.3, "EZU:STK:EUR": -0.2, "SPY:STK:USD": 0.0}
    mes = result.instruments["MES:FUT:USD:202612"]
    assert (mes.symbol, mes.exchange) == ("MES", "CME")
    assert result.instruments["EZU:STK:EUR"].currency == "EUR"


def test_needs_a_quote_per_instrument_for_pricing() -> None:
    needs = declared_needs(STRATEGY, {"weights": {"SPY": 0.6, "IEF": 0.4}})
    assert needs == [
        DataNeed(instrument=Instrument(symbol="SPY"), kind="quote"),
        DataNeed(instrument=Instrument(symbol="IEF"), kind="quote"),
    ]


def test_a_float_sum_just_above_one_is_not_leverage() -> None:
    weights = {s: 0.1 for s in "ABCDEFGHIJ"}  # sums to 0.9999999999999999 or 1.0000000000000002
    assert len(run({"weights": weights}).weights) == 10


def test_leverage_needs_the_opt_in() -> None:
    config = {"weights": {"SPY": 1.0, "IEF": 0.5}, "allow_leverage": True}
    assert run(config).weights["IEF:STK:USD"] == 0.5


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "weights: Field required"),
        ({"weights": {}}, "at least 1 item"),
        ({"weights": {"SPY": float("nan")}}, "weights.SPY: Input should be a finite number"),
        ({"weights": {"SPY": float("inf")}}, "finite number"),
        ({"weights": {"SPY": "lots"}}, "valid number"),
        ({"weights": {"SPY": 0.8, "TLT": -0.4}}, "sum of \\|weights\\| is 1.2 > 1"),
        ({"weights": {"SPY": 0.5, "SPY:STK:USD": 0.1}}, "name SPY:STK:USD twice"),
        ({"weights": {"SPY": 0.5}, "instruments": {"TLT": {}}}, "without a weight: \\['TLT'\\]"),
        ({"weights": {"SPY:STK": 0.5}}, "not SYMBOL:SEC_TYPE:CURRENCY"),
        ({"weights": {"SPY:BOND:USD": 0.5}}, "sec_type"),
        ({"weights": {"": 0.5}}, "symbol"),
        ({"weights": {"ES": 0.5}, "instruments": {"ES": {"sec_type": "FUTURE"}}}, "sec_type"),
        ({"weights": {"SPY": 0.5}, "dry": True}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_config_is_reported(config: dict[str, Any], message: str) -> None:
    with pytest.raises(StrategyFailed, match=message) as failed:
        run(config)
    assert failed.value.reason == "invalid_config"
    assert failed.value.strategy_id == "fixed_weights"
