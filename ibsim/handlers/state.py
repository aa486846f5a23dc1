"""Per-client subscription state the handlers keep between requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from ibsim.model import Instrument, PortfolioItem, Position, Quote


@dataclass
class Ticker:
    """A streaming market-data subscription and the last quote sent on it."""

    instrument: Instrument
    delayed: bool
    last: Quote | None = None


@dataclass
class Subscriptions:
    """What a client asked to keep receiving."""

    tickers: dict[int, Ticker] = field(default_factory=dict)
    account: str | None = None  # reqAccountUpdates (one account at a time, as in IB)
    multi: dict[int, tuple[str, str]] = field(default_factory=dict)  # reqId -> (account, model)
    summary: dict[int, list[str]] = field(default_factory=dict)  # reqId -> tags
    positions: bool = False
    sent_positions: dict[tuple[str, int], Position] = field(default_factory=dict)
    sent_portfolio: dict[int, PortfolioItem] = field(default_factory=dict)
