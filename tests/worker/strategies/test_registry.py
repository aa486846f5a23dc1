"""The registry, the dummy strategy, and evaluate() classifying every failure."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from worker.strategies import (
    REGISTRY,
    Instrument,
    MarketData,
    Signal,
    Strategy,
    StrategyFailed,
    evaluate,
    get,
    instruments,
    json_schemas,
    needs,
)

DUMMY = get("dummy")


class Empty(BaseModel):
    pass


def strategy(signal: Any) -> Strategy[Empty]:
    """A one-off strategy around ``signal`` (a hand-written fake for a pure unit)."""
    return Strategy(
        id="fake",
        description="",
        config_model=Empty,
        needs=lambda c: [],
        instruments=lambda c: {},
        signal=signal,
    )


def test_registry_contents() -> None:
    assert set(REGISTRY) == {"fixed_weights", "spy_macd_vixy", "dummy"}
    assert all(REGISTRY[sid].id == sid and REGISTRY[sid].description for sid in REGISTRY)


def test_unknown_strategy_is_a_strategy_failure() -> None:
    with pytest.raises(StrategyFailed) as failed:
        get("momentum")
    assert failed.value.as_dict() == {
        "strategy": "momentum",
        "reason": "unknown_strategy",
        "message": "known: dummy, fixed_weights, spy_macd_vixy",
    }


def test_every_config_model_has_a_json_schema() -> None:
    schemas = json_schemas()
    assert list(schemas) == ["dummy", "fixed_weights", "spy_macd_vixy"]
    assert schemas["spy_macd_vixy"]["properties"]["fast"]["default"] == 12
    assert "weights" in schemas["fixed_weights"]["required"]
    assert schemas["dummy"]["properties"]["fail"]["type"] == "boolean"


def test_every_strategy_runs_on_its_defaults_or_a_minimal_config() -> None:
    minimal: dict[str, dict[str, Any]] = {"fixed_weights": {"weights": {"SPY": 1.0}}}
    for sid, strat in REGISTRY.items():
        config = minimal.get(sid, {})
        assert all(n.instrument.key for n in needs(strat, config))
        assert all(k == i.key for k, i in instruments(strat, config).items())


def test_dummy_is_deterministic_and_counts_its_runs() -> None:
    config = {"weights": {"SPY": 0.5, "VIXY": 0.0}}
    first = evaluate(DUMMY, MarketData(), config, None)
    second = evaluate(DUMMY, MarketData(), config, first.state)
    assert first.weights == second.weights == {"SPY:STK:USD": 0.5, "VIXY:STK:USD": 0.0}
    assert (first.state, second.state) == ({"runs": 1}, {"runs": 2})
    assert needs(DUMMY, config) == []
    assert set(instruments(DUMMY, config)) == {"SPY:STK:USD", "VIXY:STK:USD"}


def test_dummy_hold_names_its_instruments_without_weights() -> None:
    result = evaluate(DUMMY, MarketData(), {"weights": {"SPY": 0.5}, "fresh": False}, None)
    assert not result.fresh
    assert result.weights == {}
    assert list(result.instruments) == ["SPY:STK:USD"]


def test_a_raising_strategy_is_wrapped_with_its_id_and_reason() -> None:
    with pytest.raises(StrategyFailed) as failed:
        evaluate(DUMMY, MarketData(), {"weights": {"SPY": 0.5}, "fail": True}, None)
    assert failed.value.as_dict() == {
        "strategy": "dummy",
        "reason": "error",
        "message": "DummyFailure: dummy strategy configured to fail",
    }
    assert type(failed.value.__cause__).__name__ == "DummyFailure"


@pytest.mark.parametrize(
    ("signal", "reason", "message"),
    [
        (lambda d, c, s: 1 / 0, "error", "ZeroDivisionError: division by zero"),
        (lambda d, c, s: {"SPY": 1.0}, "invalid_signal", "returned dict, not a Signal"),
        (lambda d, c, s: Signal(weights={"SPY": 1.0}), "invalid_signal", "without an instrument"),
        (lambda d, c, s: d.bars(Instrument(symbol="QQQ")), "missing_data", "QQQ:STK:USD"),
    ],
)
def test_evaluate_never_lets_an_exception_escape_unclassified(
    signal: Any, reason: str, message: str
) -> None:
    with pytest.raises(StrategyFailed, match=message) as failed:
        evaluate(strategy(signal), MarketData(), None, None)
    assert (failed.value.strategy_id, failed.value.reason) == ("fake", reason)


def test_a_config_that_is_not_a_mapping_is_invalid_config() -> None:
    with pytest.raises(StrategyFailed) as failed:
        evaluate(DUMMY, MarketData(), ["weights"], None)  # type: ignore[arg-type]
    assert failed.value.reason == "invalid_config"


def test_needs_and_instruments_classify_failures_too() -> None:
    for call in (needs, instruments):
        with pytest.raises(StrategyFailed) as failed:
            call(get("fixed_weights"), {"weights": {"SPY": 2.0}})
        assert failed.value.reason == "invalid_config"


def test_the_strategy_gets_a_private_copy_of_its_state() -> None:
    def mutate(data: MarketData, config: Empty, state: dict[str, Any]) -> Signal:
        state["seen"].append(1)
        return Signal(state=state)

    stored = {"seen": []}
    result = evaluate(strategy(mutate), MarketData(), None, stored)
    assert stored == {"seen": []}
    assert result.state == {"seen": [1]}


def test_base_exceptions_still_stop_the_process() -> None:
    def stop(data: MarketData, config: Empty, state: dict[str, Any]) -> Signal:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(strategy(stop), MarketData(), None, None)
