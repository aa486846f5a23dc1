"""spy_macd_vixy on known bar series: MACD values, crosses, regime as state, holds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.worker.strategies.bars import DOWN_AT, UP_AT, WAVE, bars, crosses, reference_diffs
from worker.strategies import MarketData, MissingData, StrategyFailed, evaluate, get
from worker.strategies.spy_macd_vixy import (
    SPY,
    VIXY,
    SpyMacdVixyConfig,
    ema,
    last_cross,
    macd,
    needs,
    signal,
)

STRATEGY = get("spy_macd_vixy")
LONG = {"SPY:STK:USD": 1.0, "VIXY:STK:USD": 0.0}
SHORT = {"SPY:STK:USD": -1.0, "VIXY:STK:USD": 1.0}


def run(closes: list[float], state: dict[str, Any] | None = None, **config: Any):
    data = MarketData(bars={SPY.key: bars(closes)})
    return evaluate(STRATEGY, data, config, state)


def day(i: int) -> str:
    return bars(WAVE)[i].date.isoformat()


def test_the_wave_crosses_where_the_tests_expect() -> None:
    assert crosses(WAVE) == {56: "down", UP_AT: "up", DOWN_AT: "down", 116: "up"}


def test_ema_and_macd_on_a_hand_computed_series() -> None:
    # EMA2 (a = 2/3): seed (3+6)/2 = 4.5, then 7.5, 4.5, 1.5. EMA3 (a = 1/2): 6, 4.5, 2.25.
    # MACD line 1.5, 0, -0.75; its EMA2: seed (1.5+0)/2 = 0.75, then 0.75 + 2/3 (-1.5) = -0.25.
    closes = [3.0, 6.0, 9.0, 3.0, 0.0]
    assert ema(closes, 2) == pytest.approx([4.5, 7.5, 4.5, 1.5])
    assert ema(closes, 3) == pytest.approx([6.0, 4.5, 2.25])
    assert ema(closes, 6) == []
    [(line1, sig1), (line2, sig2)] = macd(closes, 2, 3, 2)
    assert [line1, sig1, line2, sig2] == pytest.approx([0.0, 0.75, -0.75, -0.25])


def test_macd_matches_the_closed_form_reference() -> None:
    points = macd(WAVE, 12, 26, 9)
    ref = reference_diffs(WAVE)
    assert len(points) == len(ref) == len(WAVE) - 26 - 9 + 2
    for (line, sig), t in zip(points, sorted(ref), strict=True):
        assert (line, sig) == pytest.approx(ref[t], abs=1e-9)


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(0.0, 0.0), (0.1, 0.0)], "long"),  # prev diff == 0 counts: <= 0 < diff
        ([(-1.0, 0.0), (1.0, 0.5)], "long"),
        ([(0.0, 0.0), (-0.1, 0.0)], "short"),  # >= 0 > diff
        ([(2.0, 1.0), (0.0, 0.5)], "short"),
        ([(0.0, 0.0), (0.0, 0.0)], None),  # touching is no cross
        ([(1.0, 0.0), (2.0, 0.0)], None),
        ([(-1.0, 0.0), (-2.0, 0.0)], None),
    ],
)
def test_cross_rule_on_the_last_bar(points: list[tuple[float, float]], expected: str) -> None:
    dates = [b.date for b in bars([1.0, 1.0])]
    found = last_cross(dates, points, None)
    assert (found[0] if found else None) == expected


def test_bullish_cross_on_the_last_bar_goes_long() -> None:
    result = run(WAVE[: UP_AT + 1])
    assert result.fresh
    assert result.weights == LONG
    assert result.instruments == {SPY.key: SPY, VIXY.key: VIXY}
    assert result.state["regime"] == "long"
    assert result.state["regime_since"] == result.state["last_bar_date"] == day(UP_AT)


def test_bearish_cross_on_the_last_bar_goes_short_and_buys_the_hedge() -> None:
    state = {"regime": "long", "regime_since": day(UP_AT), "last_bar_date": day(DOWN_AT - 1)}
    result = run(WAVE[: DOWN_AT + 1], state)
    assert result.fresh
    assert result.weights == SHORT
    assert result.state["regime"] == "short"
    assert result.state["regime_since"] == day(DOWN_AT)


def test_configured_weights_are_used() -> None:
    result = run(WAVE[: DOWN_AT + 1], short_weight=-0.5, hedge_weight=0.25)
    assert result.weights == {"SPY:STK:USD": -0.5, "VIXY:STK:USD": 0.25}


@pytest.mark.parametrize(("regime", "weights"), [("long", LONG), ("short", SHORT)])
def test_no_cross_keeps_the_stored_regime(regime: str, weights: dict[str, float]) -> None:
    # Bar UP_AT + 3 has no cross; whatever the stored regime is, it is re-asserted.
    state = {"regime": regime, "regime_since": day(10), "last_bar_date": day(UP_AT + 2)}
    result = run(WAVE[: UP_AT + 4], state)
    assert result.fresh
    assert result.weights == weights
    assert result.state["regime"] == regime
    assert result.state["regime_since"] == day(10)
    assert result.state["last_bar_date"] == day(UP_AT + 3)


def test_no_cross_and_no_regime_known_holds() -> None:
    result = run(WAVE[: UP_AT + 4])
    assert not result.fresh
    assert result.weights == {}
    assert set(result.instruments) == {SPY.key, VIXY.key}
    assert result.state["regime"] is None
    assert result.state["last_bar_date"] == day(UP_AT + 3)


def test_a_cross_on_a_bar_the_last_run_did_not_see_is_not_lost() -> None:
    # The previous run saw bar UP_AT - 2; the cross at UP_AT happened while nobody ran.
    state = {"regime": "short", "last_bar_date": day(UP_AT - 2)}
    result = run(WAVE[: UP_AT + 4], state)
    assert result.weights == LONG
    assert result.state["regime_since"] == day(UP_AT)


def test_the_latest_of_several_missed_crosses_wins() -> None:
    state = {"regime": "long", "last_bar_date": day(50)}  # then down at 56, up at 76
    result = run(WAVE[: UP_AT + 4], state)
    assert result.weights == LONG
    assert result.state["regime_since"] == day(UP_AT)


def test_the_same_last_bar_twice_is_no_new_signal() -> None:
    first = run(WAVE[: UP_AT + 1])
    second = run(WAVE[: UP_AT + 1], dict(first.state))
    assert first.fresh
    assert not second.fresh
    assert second.weights == {}
    assert second.state == first.state
    assert "no new SPY bar" in second.notes


def test_an_older_last_bar_than_already_seen_is_no_new_signal() -> None:
    state = {"regime": "long", "last_bar_date": day(UP_AT + 5)}
    result = run(WAVE[: UP_AT + 1], state)
    assert not result.fresh
    assert result.state["last_bar_date"] == day(UP_AT + 5)


def test_state_is_json_and_carries_the_last_macd_values_for_the_audit() -> None:
    result = run(WAVE[: UP_AT + 1])
    line, sig = reference_diffs(WAVE[: UP_AT + 1])[UP_AT]
    assert result.state["macd"] == pytest.approx(line)
    assert result.state["signal"] == pytest.approx(sig)
    assert json.loads(json.dumps(result.state)) == result.state


def test_too_few_bars_is_missing_data() -> None:
    assert run(WAVE[:35]).state["last_bar_date"] == day(34)  # slow + signal is enough
    data = MarketData(bars={SPY.key: bars(WAVE[:34])})
    with pytest.raises(MissingData, match="need >= 35 daily bars, got 34"):
        signal(data, SpyMacdVixyConfig(), {})
    with pytest.raises(StrategyFailed) as failed:
        run(WAVE[:34])
    assert failed.value.reason == "missing_data"


def test_no_spy_bars_at_all_is_missing_data() -> None:
    with pytest.raises(StrategyFailed) as failed:
        evaluate(STRATEGY, MarketData(), None, None)
    assert failed.value.reason == "missing_data"
    assert "SPY:STK:USD" in failed.value.message


def test_a_corrupt_stored_state_fails_the_strategy_only() -> None:
    with pytest.raises(StrategyFailed) as failed:
        run(WAVE[: UP_AT + 1], {"regime": "sideways"})
    assert failed.value.strategy_id == "spy_macd_vixy"


def test_needs_daily_spy_bars_for_warm_up() -> None:
    [need] = needs(SpyMacdVixyConfig())
    assert (need.instrument, need.kind, need.bars) == (SPY, "daily_bars", 120)
    assert SPY.primary_exchange == "ARCA"
    assert VIXY.primary_exchange == "BATS"  # Cboe BZX, not Arca: IB rejects a wrong one


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"fast": 26, "slow": 12}, "fast .* must be shorter than slow"),
        ({"bars": 30}, "bars must be >= slow \\+ signal = 35"),
        ({"short_weight": 1.0}, "less than or equal to 0"),
        ({"hedge_weight": -1.0}, "greater than or equal to 0"),
        ({"hedge_weight": 100}, "less than or equal to 1"),
        ({"long_weight": float("inf")}, "finite number"),
        ({"sloww": 30}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_config_is_reported(config: dict[str, Any], message: str) -> None:
    with pytest.raises(StrategyFailed, match=message) as failed:
        run(WAVE, None, **config)
    assert failed.value.reason == "invalid_config"


def test_the_short_regime_is_two_hundred_percent_gross_by_default() -> None:
    result = run(WAVE[: DOWN_AT + 1])
    assert sum(abs(w) for w in result.weights.values()) == 2.0
