"""What every strategy plugin is, and the plain data it reads and returns.

A strategy is a pure function: (the market data it declared in ``needs``, its validated config,
its previous state) -> ``Signal`` (target weights per instrument and a new state). It does no
I/O of its own and reads no clock: dates come from the bars it is given. The allocation intent
fetches the declared data, calls the strategy through ``worker.strategies.evaluate`` and stores
``Signal.state`` for the next run.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

SecType = Literal["STK", "CASH", "FUT", "IND", "CFD"]
FailureReason = Literal[
    "unknown_strategy", "invalid_config", "missing_data", "invalid_signal", "error"
]
# Long enough to name the cause, short enough for an outcome event and a log line.
MAX_REASON_CHARS = 300


class Instrument(BaseModel):
    """One tradable or observable instrument, with the order journal's contract-spec fields.

    ``model_dump()`` is exactly the contract spec ``place_order`` sends to the broker.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[^:]+$", description="IB symbol.")
    sec_type: SecType = Field("STK", description="IB security type.")
    exchange: str = Field("SMART", max_length=32, description="Routing exchange.")
    currency: str = Field("USD", min_length=3, max_length=3, description="Contract currency.")
    primary_exchange: str = Field("", max_length=32, description="Disambiguates stocks.")
    last_trade_date: str = Field(
        "", max_length=16, pattern=r"^[^:]*$", description="Futures: YYYYMM[DD]."
    )

    @property
    def key(self) -> str:
        """Identity used in weights and state: ``SYMBOL:SEC_TYPE:CURRENCY[:LAST_TRADE_DATE]``.

        Routing and primary exchange only help IB find the contract; they are not part of the
        identity, so the same stock routed differently is still one position.
        """
        base = f"{self.symbol}:{self.sec_type}:{self.currency}"
        return f"{base}:{self.last_trade_date}" if self.last_trade_date else base

    @classmethod
    def from_key(cls, key: str) -> Instrument:
        """Parse a key written by ``key`` (other fields take their defaults).

        Raises:
            ValueError: the key does not have 3 or 4 colon-separated parts.
        """
        parts = key.split(":")
        if len(parts) not in (3, 4):
            raise ValueError(f"instrument key {key!r} is not SYMBOL:SEC_TYPE:CURRENCY[:EXPIRY]")
        fields = dict(
            zip(("symbol", "sec_type", "currency", "last_trade_date"), parts, strict=False)
        )
        return cls.model_validate(fields)


class DataNeed(BaseModel):
    """What a strategy asks the allocation to fetch before calling it.

    ``daily_bars`` means the last ``bars`` COMPLETED daily bars, oldest first: the strategy cannot
    tell a still-forming bar of today from a closed one, since it reads no clock.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    instrument: Instrument
    kind: Literal["daily_bars", "quote"]
    bars: int = Field(0, ge=0, le=5000, description="Number of daily bars; 0 for a quote.")

    @model_validator(mode="after")
    def _bars_match_kind(self) -> DataNeed:
        if (self.kind == "daily_bars") != (self.bars > 0):
            raise ValueError("daily_bars needs bars >= 1; a quote takes no bars")
        return self


class Bar(BaseModel):
    """One daily bar as the broker reports it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(0.0, ge=0)


class Quote(BaseModel):
    """A snapshot quote; a field IB did not send is None."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    close: float | None = None


class Signal(BaseModel):
    """What a strategy returns.

    Attributes:
        weights: target weight per instrument key, signed (negative = short). An explicit 0
            closes; a key that is absent is not targeted at all, so nothing is ever liquidated
            by omission.
        instruments: the Instrument of every key in ``weights`` (and of any other instrument
            the strategy manages, so a hold still names them).
        fresh: False means "no new signal": the caller holds and ``weights`` must be empty.
        state: JSON-able; stored by the caller and passed back on the next run.
        notes: one human-readable line for the run's result.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    weights: dict[str, float] = Field(default_factory=dict)
    instruments: dict[str, Instrument] = Field(default_factory=dict)
    fresh: bool = True
    state: dict[str, JsonValue] = Field(default_factory=dict)
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Signal:
        if not self.fresh and self.weights:
            raise ValueError("a hold (fresh=False) carries no weights")
        unknown = sorted(set(self.weights) - set(self.instruments))
        if unknown:
            raise ValueError(f"weights without an instrument: {unknown}")
        wrong = sorted(k for k, inst in self.instruments.items() if inst.key != k)
        if wrong:
            raise ValueError(f"instrument keys that do not match their instrument: {wrong}")
        return self


class MissingData(Exception):
    """A strategy asked for data the caller did not provide, or too little of it."""

    def __init__(self, instrument: Instrument, what: str) -> None:
        super().__init__(f"{instrument.key}: {what}")
        self.instrument = instrument


class StrategyFailed(Exception):
    """A strategy could not produce a signal; the allocation freezes that strategy's instruments.

    Not a ``WorkerError``: the run goes on with the other strategies and reports this one.

    Attributes:
        strategy_id: the registry id (or the configured id, when unknown).
        reason: a stable short code, one of ``FailureReason``.
        message: what went wrong, at most ``MAX_REASON_CHARS`` characters.
    """

    def __init__(self, strategy_id: str, reason: FailureReason, message: str) -> None:
        message = message[:MAX_REASON_CHARS]
        super().__init__(f"strategy {strategy_id!r} {reason}: {message}")
        self.strategy_id = strategy_id
        self.reason = reason
        self.message = message

    def as_dict(self) -> dict[str, str]:
        """The failure as the allocation reports it in its result."""
        return {"strategy": self.strategy_id, "reason": self.reason, "message": self.message}


class MarketData:
    """The data the allocation fetched for one strategy, keyed by ``Instrument.key``.

    A key that is absent was not provided (``MissingData``); a quote mapped to None was asked
    for but IB had none (e.g. no market data outside trading hours).
    """

    def __init__(
        self,
        bars: Mapping[str, Sequence[Bar]] | None = None,
        quotes: Mapping[str, Quote | None] | None = None,
    ) -> None:
        self._bars = dict(bars or {})
        self._quotes = dict(quotes or {})

    def bars(self, instrument: Instrument) -> list[Bar]:
        """Daily bars of ``instrument``, oldest first (a copy the strategy may keep).

        Raises:
            MissingData: no bars were provided for this instrument.
            ValueError: the bars are not in strictly ascending date order.
        """
        if instrument.key not in self._bars:
            raise MissingData(instrument, "daily bars were not provided")
        bars = list(self._bars[instrument.key])
        # Unordered or duplicated dates would silently shift every indicator; refuse them.
        if any(a.date >= b.date for a, b in itertools.pairwise(bars)):
            raise ValueError(f"{instrument.key}: bars are not in ascending date order")
        return bars

    def quote(self, instrument: Instrument) -> Quote | None:
        """The quote of ``instrument``; None when it was asked for but IB had none.

        Raises:
            MissingData: no quote was asked for this instrument.
        """
        if instrument.key not in self._quotes:
            raise MissingData(instrument, "quote was not provided")
        return self._quotes[instrument.key]


C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class Strategy(Generic[C]):
    """One strategy plugin. Every callable is pure; ``config`` is an instance of ``config_model``.

    Attributes:
        id: registry key, and the key of its settings in the Firestore config (``strategies.<id>``).
        description: one line for docs and schemas.
        config_model: pydantic model of its settings.
        needs: data to fetch before ``signal`` is called.
        instruments: every instrument it may hold (what the allocation freezes when it fails).
        signal: (data, config, previous state) -> Signal.
    """

    id: str
    description: str
    config_model: type[C]
    needs: Callable[[C], list[DataNeed]]
    instruments: Callable[[C], dict[str, Instrument]]
    signal: Callable[[MarketData, C, dict[str, Any]], Signal]
