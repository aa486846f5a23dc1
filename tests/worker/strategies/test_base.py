"""The plain data of worker.strategies.base: instruments, needs, market data, signals."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from tests.worker.strategies.bars import bars
from worker.strategies import (
    Bar,
    DataNeed,
    Instrument,
    MarketData,
    MissingData,
    Quote,
    Signal,
    StrategyFailed,
)

SPY = Instrument(symbol="SPY", primary_exchange="ARCA")
MES = Instrument(symbol="MES", sec_type="FUT", exchange="CME", last_trade_date="202612")


def test_instrument_defaults_and_keys() -> None:
    assert SPY.model_dump() == {
        "symbol": "SPY",
        "sec_type": "STK",
        "exchange": "SMART",
        "currency": "USD",
        "primary_exchange": "ARCA",
        "last_trade_date": "",
    }
    assert SPY.key == "SPY:STK:USD"
    assert MES.key == "MES:FUT:USD:202612"
    assert Instrument.from_key("MES:FUT:USD:202612").last_trade_date == "202612"
    assert Instrument.from_key(SPY.key).key == SPY.key


@pytest.mark.parametrize("key", ["SPY", "SPY:STK", "A:B:C:D:E", "SPY:BOND:USD", ":STK:USD"])
def test_malformed_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match=r"SYMBOL|sec_type|symbol"):
        Instrument.from_key(key)


def test_instrument_is_frozen_and_strict() -> None:
    with pytest.raises(ValidationError):
        SPY.symbol = "QQQ"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        Instrument(symbol="SPY", strike=5)  # type: ignore[call-arg]


def test_data_need_bars_match_the_kind() -> None:
    assert DataNeed(instrument=SPY, kind="daily_bars", bars=60).bars == 60
    assert DataNeed(instrument=SPY, kind="quote").bars == 0
    for kind, count in (("daily_bars", 0), ("quote", 5)):
        with pytest.raises(ValidationError, match="daily_bars needs bars"):
            DataNeed(instrument=SPY, kind=kind, bars=count)


def test_market_data_gives_what_was_provided() -> None:
    series = bars([1.0, 2.0, 3.0])
    data = MarketData(bars={SPY.key: series}, quotes={SPY.key: Quote(bid=1.0, ask=1.1)})
    assert data.bars(SPY) == series
    assert data.bars(SPY) is not series
    assert data.quote(SPY) == Quote(bid=1.0, ask=1.1)


def test_market_data_tells_missing_from_unavailable() -> None:
    data = MarketData(quotes={SPY.key: None})
    assert data.quote(SPY) is None  # asked for, but IB had none
    with pytest.raises(MissingData, match="MES:FUT:USD:202612: quote was not provided"):
        data.quote(MES)
    with pytest.raises(MissingData, match="SPY:STK:USD: daily bars were not provided") as err:
        data.bars(SPY)
    assert err.value.instrument == SPY


@pytest.mark.parametrize("order", [[0, 2, 1], [0, 1, 1]])
def test_unordered_or_duplicate_bar_dates_are_refused(order: list[int]) -> None:
    series = bars([1.0, 2.0, 3.0])
    data = MarketData(bars={SPY.key: [series[i] for i in order]})
    with pytest.raises(ValueError, match="ascending date order"):
        data.bars(SPY)


def test_bars_and_quotes_refuse_non_finite_prices() -> None:
    with pytest.raises(ValidationError, match="finite"):
        Bar(date=dt.date(2026, 1, 5), open=1, high=1, low=1, close=float("nan"))
    with pytest.raises(ValidationError, match="finite"):
        Quote(last=float("inf"))


def test_signal_checks_itself() -> None:
    ok = Signal(weights={SPY.key: -0.5}, instruments={SPY.key: SPY}, state={"a": [1, "x"]})
    assert ok.fresh
    with pytest.raises(ValidationError, match="without an instrument"):
        Signal(weights={SPY.key: 0.5})
    with pytest.raises(ValidationError, match="do not match"):
        Signal(weights={"SPY": 0.5}, instruments={"SPY": SPY})
    with pytest.raises(ValidationError, match=r"a hold .* carries no weights"):
        Signal(weights={SPY.key: 0.5}, instruments={SPY.key: SPY}, fresh=False)
    with pytest.raises(ValidationError, match="finite"):
        Signal(weights={SPY.key: float("nan")}, instruments={SPY.key: SPY})
    with pytest.raises(ValidationError):
        Signal(state={"when": dt.date(2026, 1, 5)})  # state must be JSON


def test_strategy_failed_is_short_and_reportable() -> None:
    failed = StrategyFailed("x", "error", "y" * 1000)
    assert failed.as_dict() == {"strategy": "x", "reason": "error", "message": "y" * 300}
    assert str(failed).startswith("strategy 'x' error: yyy")
