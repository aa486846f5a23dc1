"""Per-client subscription state the handlers keep between requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from ibsim.model import Bar, DepthLevel, Instrument, PortfolioItem, Position


@dataclass
class Ticker:
    """A market-data subscription and what was last sent on it (only changes are sent)."""

    instrument: Instrument
    requested_type: int  # reqMarketDataType in force when it was requested
    generic: frozenset[str] = frozenset()  # genericTickList entries ("233", "mdoff", ...)
    sent: dict[int, list[str]] = field(default_factory=dict)  # tick type -> message sent
    data_type: int = 0  # the marketDataType last announced
    due: float = 0.0  # loop time of the next sample
    started: bool = False  # the first sample (with the once-only ticks) has been sent

    @property
    def top(self) -> bool:
        """Top of book wanted (``mdoff`` turns it off: generic ticks only)."""
        return "mdoff" not in self.generic


@dataclass
class DepthBook:
    """A reqMktDepth subscription and the rows last sent on it."""

    instrument: Instrument
    rows: int
    smart: bool
    sent: dict[tuple[int, int], DepthLevel] = field(default_factory=dict)  # (side, position)
    due: float = 0.0  # loop time of the next sample


@dataclass
class BarStream:
    """A reqHistoricalData with keepUpToDate: the forming bar is re-sent as it changes."""

    instrument: Instrument
    bar_size: str
    what_to_show: str
    use_rth: bool
    format_date: int
    next_update: float  # simulation Unix time of the next update
    last: Bar | None = None


@dataclass
class Subscriptions:
    """What a client asked to keep receiving."""

    tickers: dict[int, Ticker] = field(default_factory=dict)
    bars: dict[int, BarStream] = field(default_factory=dict)  # keepUpToDate requests
    depth: dict[int, DepthBook] = field(default_factory=dict)
    account: str | None = None  # reqAccountUpdates (one account at a time, as in IB)
    multi: dict[int, tuple[str, str]] = field(default_factory=dict)  # reqId -> (account, model)
    summary: dict[int, list[str]] = field(default_factory=dict)  # reqId -> tags
    positions: bool = False
    sent_positions: dict[tuple[str, int], Position] = field(default_factory=dict)
    sent_portfolio: dict[int, PortfolioItem] = field(default_factory=dict)
    pnl: dict[int, tuple[str, int]] = field(default_factory=dict)  # reqId -> (account, conId)
    sent_pnl: dict[int, object] = field(default_factory=dict)  # reqId -> figures last sent
    pnl_due: float = 0.0  # loop time of the next P&L check
