"""``fixed_weights``: constant target weights from config, e.g. a 60/40 portfolio.

Always fresh: the weights are re-asserted on every run, so holdings drift back to them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worker.strategies.base import DataNeed, Instrument, MarketData, Signal, Strategy

# Float sums of weights like 0.6 + 0.4 may land a hair above 1.
GROSS_TOLERANCE = 1e-9


class FixedWeightsConfig(BaseModel):
    """Settings of ``fixed_weights`` (Firestore ``strategies.fixed_weights``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    weights: dict[str, float] = Field(
        min_length=1,
        description="Target weight per symbol (e.g. SPY) or instrument key (e.g. SPY:STK:USD); "
        "negative = short, 0 = close.",
    )
    instruments: dict[str, Instrument] = Field(
        default_factory=dict,
        description="Contract details per weights key when the defaults (STK, SMART, USD) do "
        "not fit; symbol defaults to the key.",
    )
    allow_leverage: bool = Field(False, description="Allow a sum of |weights| above 1.")

    @field_validator("instruments", mode="before")
    @classmethod
    def _symbol_defaults_to_key(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: {"symbol": k, **v} if isinstance(v, dict) else v for k, v in value.items()}

    @model_validator(mode="after")
    def _check(self) -> FixedWeightsConfig:
        unused = sorted(set(self.instruments) - set(self.weights))
        if unused:
            raise ValueError(f"instruments without a weight: {unused}")
        gross = sum(abs(w) for w in self.weights.values())
        if gross > 1 + GROSS_TOLERANCE and not self.allow_leverage:
            raise ValueError(f"sum of |weights| is {gross:g} > 1; set allow_leverage to allow it")
        targets(self)  # duplicate or malformed keys fail here, at config time
        return self


def resolve(name: str, details: dict[str, Instrument]) -> Instrument:
    """The Instrument a weights key names: its details entry, a full key, or a bare symbol."""
    if name in details:
        return details[name]
    if ":" in name:
        return Instrument.from_key(name)
    return Instrument(symbol=name)


def targets(config: FixedWeightsConfig) -> dict[str, tuple[Instrument, float]]:
    """Weights keyed by instrument key, each with its Instrument.

    Raises:
        ValueError: two weights keys name the same instrument (e.g. ``SPY`` and ``SPY:STK:USD``).
    """
    out: dict[str, tuple[Instrument, float]] = {}
    for name, weight in config.weights.items():
        inst = resolve(name, config.instruments)
        if inst.key in out:
            raise ValueError(f"weights name {inst.key} twice")
        out[inst.key] = (inst, weight)
    return out


def instruments(config: FixedWeightsConfig) -> dict[str, Instrument]:
    """Every instrument in the weights."""
    return {key: inst for key, (inst, _) in targets(config).items()}


def needs(config: FixedWeightsConfig) -> list[DataNeed]:
    """Only quotes: the signal reads nothing, but the allocation prices these instruments."""
    return [DataNeed(instrument=inst, kind="quote") for inst in instruments(config).values()]


def signal(data: MarketData, config: FixedWeightsConfig, state: dict[str, Any]) -> Signal:
    """The configured weights, fresh on every run."""
    del data, state  # constant weights need neither
    resolved = targets(config)
    return Signal(
        weights={key: weight for key, (_, weight) in resolved.items()},
        instruments={key: inst for key, (inst, _) in resolved.items()},
        fresh=True,
        notes=f"fixed weights for {len(resolved)} instrument(s)",
    )


STRATEGY = Strategy(
    id="fixed_weights",
    description="Constant target weights from config, e.g. 60/40; fresh on every run.",
    config_model=FixedWeightsConfig,
    needs=needs,
    instruments=instruments,
    signal=signal,
)
