"""``dummy``: a deterministic strategy for tests of the allocation.

Returns its configured weights (resolved like ``fixed_weights``), or a hold, or raises, as
configured; counts its runs in its state so a test can see state round-trip.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from worker.strategies import fixed_weights
from worker.strategies.base import DataNeed, Instrument, MarketData, Signal, Strategy


class DummyConfig(fixed_weights.FixedWeightsConfig):
    """Settings of ``dummy``: ``fixed_weights``' settings plus failure and freshness switches."""

    weights: dict[str, float] = Field(
        default_factory=dict, description="Target weight per symbol or instrument key."
    )
    fail: bool = Field(False, description="Raise instead of returning a signal.")
    fresh: bool = Field(True, description="False: return a hold (no new signal).")


class DummyFailure(RuntimeError):
    """Raised when the config says ``fail``: stands for any bug inside a strategy."""


def instruments(config: DummyConfig) -> dict[str, Instrument]:
    """Every instrument in the weights."""
    return fixed_weights.instruments(config)


def needs(config: DummyConfig) -> list[DataNeed]:
    """Nothing."""
    del config
    return []


def signal(data: MarketData, config: DummyConfig, state: dict[str, Any]) -> Signal:
    """The configured weights, a hold, or ``DummyFailure``, as configured.

    Raises:
        DummyFailure: ``config.fail`` is set.
    """
    del data  # needs nothing
    if config.fail:
        raise DummyFailure("dummy strategy configured to fail")
    runs = int(state.get("runs", 0)) + 1
    resolved = fixed_weights.targets(config)
    return Signal(
        weights={key: w for key, (_, w) in resolved.items()} if config.fresh else {},
        instruments={key: inst for key, (inst, _) in resolved.items()},
        fresh=config.fresh,
        state={"runs": runs},
        notes=f"run {runs}" + ("" if config.fresh else ": hold"),
    )


STRATEGY = Strategy(
    id="dummy",
    description="Deterministic weights, hold or failure from config; for tests.",
    config_model=DummyConfig,
    needs=needs,
    instruments=instruments,
    signal=signal,
)
