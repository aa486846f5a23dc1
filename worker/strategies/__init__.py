"""The strategy registry (id -> Strategy) and the one guarded way to call a strategy.

The allocation intent calls ``needs``, fetches that data, then ``evaluate``. Each of these
validates the raw Firestore config (``strategies.<id>``) with the strategy's model and turns
every failure into ``StrategyFailed``, so a broken or silent strategy freezes its own
instruments and never the run. Strategies do no I/O; see ``base``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from worker.strategies import dummy, fixed_weights, spy_macd_vixy
from worker.strategies.base import (
    Bar,
    DataNeed,
    Instrument,
    MarketData,
    MissingData,
    Quote,
    Signal,
    Strategy,
    StrategyFailed,
)

REGISTRY: dict[str, Strategy[Any]] = {
    s.id: s for s in (fixed_weights.STRATEGY, spy_macd_vixy.STRATEGY, dummy.STRATEGY)
}

__all__ = [
    "REGISTRY",
    "Bar",
    "DataNeed",
    "Instrument",
    "MarketData",
    "MissingData",
    "Quote",
    "Signal",
    "Strategy",
    "StrategyFailed",
    "evaluate",
    "get",
    "instruments",
    "json_schemas",
    "needs",
]

T = TypeVar("T")


def get(strategy_id: str) -> Strategy[Any]:
    """The registered strategy ``strategy_id``.

    Raises:
        StrategyFailed: reason ``unknown_strategy`` (a config may name a strategy that was
            removed; the allocation freezes its holdings like any other failure).
    """
    try:
        return REGISTRY[strategy_id]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise StrategyFailed(strategy_id, "unknown_strategy", f"known: {known}") from None


def needs(strategy: Strategy[Any], raw_config: Mapping[str, Any] | None) -> list[DataNeed]:
    """The data to fetch for ``strategy`` under ``raw_config``.

    Raises:
        StrategyFailed: invalid config, or ``needs`` raised.
    """
    config = _config(strategy, raw_config)
    return _guarded(strategy.id, lambda: strategy.needs(config))


def instruments(
    strategy: Strategy[Any], raw_config: Mapping[str, Any] | None
) -> dict[str, Instrument]:
    """Every instrument ``strategy`` may hold under ``raw_config``, keyed by ``Instrument.key``.

    Raises:
        StrategyFailed: invalid config, or ``instruments`` raised.
    """
    config = _config(strategy, raw_config)
    return _guarded(strategy.id, lambda: strategy.instruments(config))


def evaluate(
    strategy: Strategy[Any],
    data: MarketData,
    raw_config: Mapping[str, Any] | None,
    state: Mapping[str, Any] | None,
) -> Signal:
    """Run ``strategy`` once: validated config, a private copy of its state, a checked Signal.

    Args:
        strategy: from ``REGISTRY`` / ``get``.
        data: what the caller fetched for ``needs(strategy, raw_config)``.
        raw_config: the strategy's settings as stored (None = all defaults).
        state: ``Signal.state`` of its previous run (None = first run).

    Raises:
        StrategyFailed: reason ``invalid_config``, ``missing_data``, ``invalid_signal`` or
            ``error``; never any other Exception.
    """
    config = _config(strategy, raw_config)
    # A deep copy keeps the strategy pure even if it mutates what it was given.
    previous = copy.deepcopy(dict(state or {}))
    result = _guarded(strategy.id, lambda: strategy.signal(data, config, previous))
    if not isinstance(result, Signal):
        raise StrategyFailed(
            strategy.id, "invalid_signal", f"returned {type(result).__name__}, not a Signal"
        )
    return result


def json_schemas() -> dict[str, Any]:
    """JSON Schema of every strategy's config, keyed by id (docs, config editors)."""
    return {sid: s.config_model.model_json_schema() for sid, s in sorted(REGISTRY.items())}


def _config(strategy: Strategy[Any], raw_config: Mapping[str, Any] | None) -> BaseModel:
    try:
        return strategy.config_model.model_validate(dict(raw_config or {}))
    except ValidationError as exc:
        raise StrategyFailed(strategy.id, "invalid_config", _summary(exc)) from exc
    except Exception as exc:  # e.g. raw_config is not a mapping at all
        raise StrategyFailed(strategy.id, "invalid_config", _describe(exc)) from exc


def _guarded(strategy_id: str, fn: Callable[[], T]) -> T:
    with _classified(strategy_id):
        return fn()


@contextmanager
def _classified(strategy_id: str) -> Iterator[None]:
    # Exception, not BaseException: SystemExit and KeyboardInterrupt must still stop the process.
    try:
        yield
    except MissingData as exc:
        raise StrategyFailed(strategy_id, "missing_data", str(exc)) from exc
    except ValidationError as exc:  # a Signal or state the strategy built does not validate
        raise StrategyFailed(strategy_id, "invalid_signal", _summary(exc)) from exc
    except Exception as exc:
        raise StrategyFailed(strategy_id, "error", _describe(exc)) from exc


def _summary(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
