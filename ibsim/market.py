"""The simulated market: a controllable clock, the instrument catalog and deterministic prices.

Every price is a pure function of (seed, instrument, clock second) via :mod:`ibsim.walk`, so two
runs with the same scenario, seed and clock see the same quotes, bars and therefore fills, no
matter how often or in which order they asked. FX pairs are derived from one USD value per
currency, which keeps every cross rate (EUR.GBP, USD.JPY, ...) consistent with the ledger's
conversions.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time

from ibsim import bars as bars_mod
from ibsim import hours, options, walk
from ibsim.catalog import Catalog, kind
from ibsim.model import Bar, DepthLevel, Instrument, Quote, SecType
from ibsim.options import Greeks

__all__ = ["DEFAULT_PRICES", "Catalog", "Clock", "Market", "ib_time"]

# Seed prices (the walk wanders around these). Currencies are in USD per unit.
DEFAULT_PRICES: dict[str, float] = {
    "SPY": 600.0,
    "QQQ": 520.0,
    "AAPL": 230.0,
    "MSFT": 420.0,
    "VIXY": 45.0,
    "IEF": 95.0,
    "GLD": 250.0,
    "TLT": 90.0,
    "IBM": 230.0,
    "AMZN": 210.0,
    "TSLA": 330.0,
    "NVDA": 140.0,
    "META": 580.0,
    "GOOGL": 175.0,
    "SPX": 6000.0,
    "NDX": 21000.0,  # no catalog entry: the path NQ and MNQ follow
    "VIX": 16.0,
    "EUR": 1.08,
    "GBP": 1.27,
    "CHF": 1 / 0.88,
    "JPY": 1 / 150.0,
    "CAD": 1 / 1.38,
    "AUD": 0.66,
}
# The index path each future follows (with carry), and volatilities unlike their type's.
FUTURE_UNDERLYING = {"MES": "SPX", "ES": "SPX", "NQ": "NDX", "MNQ": "NDX"}
_SYMBOL_VOL = {"VIX": 0.90, "TSLA": 0.55, "NVDA": 0.45}
_ANNUAL_VOL = {SecType.STOCK: 0.20, SecType.INDEX: 0.18, SecType.FUTURE: 0.18, SecType.CASH: 0.08,
               SecType.OPTION: 0.60}  # fmt: skip
_SPREAD_TICKS = {SecType.STOCK: 2, SecType.INDEX: 0, SecType.FUTURE: 1, SecType.CASH: 2,
                 SecType.OPTION: 2}  # fmt: skip
_SIZE_UNIT = {SecType.STOCK: 100, SecType.INDEX: 0, SecType.FUTURE: 1, SecType.CASH: 1_000_000,
              SecType.OPTION: 10}  # fmt: skip
_DAILY_VOLUME = {SecType.STOCK: 5e6, SecType.INDEX: 0.0, SecType.FUTURE: 1e5, SecType.CASH: 0.0,
                 SecType.OPTION: 5e3}  # fmt: skip
OPTION_VOL = 0.18  # the flat volatility options are priced with (see ibsim.options)
_EXPIRY_CLOSE = clock_time(16, 0)  # options stop trading at 16:00 New York on their expiry day
_FUTURE_CARRY_PER_YEAR = 0.045  # futures trade above their index by about the financing cost


def ib_time(when: datetime) -> str:
    """IB's "YYYYMMDD HH:MM:SS zone" text for an instant, in UTC (both libraries parse it)."""
    return f"{when.astimezone(UTC):%Y%m%d %H:%M:%S} UTC"


class Clock:
    """A controllable, thread-safe clock (tz-aware UTC).

    Running clocks advance with the host's monotonic time from ``start``; frozen ones only move
    through :meth:`advance` and :meth:`set`, which tests use to make every quote reproducible.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._base = _aware(start) if start else datetime.now(UTC)
        self._mono = time.monotonic()
        self._frozen = frozen

    def now(self) -> datetime:
        """The current simulated time."""
        with self._lock:
            return self._now()

    def _now(self) -> datetime:
        if self._frozen:
            return self._base
        return self._base + timedelta(seconds=time.monotonic() - self._mono)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (also when frozen)."""
        with self._lock:
            self._base += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (naive datetimes are taken as UTC)."""
        with self._lock:
            self._base, self._mono = _aware(when), time.monotonic()

    def freeze(self) -> None:
        """Stop the clock at the current instant."""
        with self._lock:
            self._base, self._frozen = self._now(), True

    def unfreeze(self) -> None:
        """Let the clock run again from where it stands."""
        with self._lock:
            self._mono, self._frozen = time.monotonic(), False

    @property
    def frozen(self) -> bool:
        """Whether the clock is frozen."""
        return self._frozen


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class Market:
    """Quotes, bars, FX rates and open/closed state for the catalog's instruments."""

    def __init__(
        self,
        catalog: Catalog,
        clock: Clock,
        *,
        seed: int = 0,
        price_seeds: dict[str, float] | None = None,
    ) -> None:
        self.catalog = catalog
        self.clock = clock
        self.seed = seed
        if catalog.clock is None:
            catalog.clock = clock
        self._seeds = dict(DEFAULT_PRICES)
        for name, value in (price_seeds or {}).items():
            self._seeds.update(_normalise_seed(name, float(value)))

    # --- prices -------------------------------------------------------------------------
    def _walk(self, key: str, t: float, vol: float) -> float:
        return walk.price(self.seed, key, self._seeds[key], t, vol)

    def usd_per(self, currency: str, t: float) -> float:
        """USD value of one unit of ``currency`` at Unix time ``t``."""
        if currency == "USD":
            return 1.0
        if currency not in self._seeds:
            raise KeyError(f"no FX rate for currency {currency}")
        return self._walk(currency, t, _ANNUAL_VOL[SecType.CASH])

    def mid(self, inst: Instrument, t: float) -> float:
        """Unrounded mid price of ``inst`` at Unix time ``t``."""
        vol = _SYMBOL_VOL.get(inst.symbol, _ANNUAL_VOL[inst.sec_type])
        if inst.sec_type == SecType.CASH:
            return self.usd_per(inst.symbol, t) / self.usd_per(inst.currency, t)
        if inst.sec_type == SecType.OPTION:
            return self.option_greeks(inst, t).price
        if inst.sec_type == SecType.FUTURE:
            index = FUTURE_UNDERLYING.get(inst.symbol, "SPX")
            seed = self._seeds.get(inst.symbol)
            scale = seed / self._seeds[index] if seed else 1.0
            return self._walk(index, t, vol) * self._carry(inst, t) * scale
        if inst.symbol not in self._seeds:
            self._seeds[inst.symbol] = 100.0  # scenario instruments without a seed still quote
        return self._walk(inst.symbol, t, vol)

    def option_greeks(self, inst: Instrument, t: float, vol: float = OPTION_VOL) -> Greeks:
        """An option's model price and greeks at Unix time ``t`` on its underlying's path."""
        spot = self.mid(self.catalog.by_con_id(inst.underlying_con_id), t)
        years = (_option_expiry(inst.last_trade_date) - t) / walk.SECONDS_PER_YEAR
        return options.greeks(inst.right, spot, inst.strike, years, vol)

    def years_to_expiry(self, inst: Instrument) -> float:
        """An option's remaining life in years (0 once expired)."""
        left = _option_expiry(inst.last_trade_date) - self.clock.now().timestamp()
        return max(0.0, left / walk.SECONDS_PER_YEAR)

    def option_expired(self, inst: Instrument) -> bool:
        """Whether an option's last trading day has closed (16:00 New York)."""
        return self.clock.now().timestamp() >= _option_expiry(inst.last_trade_date)

    def option_computations(self, inst: Instrument, quote: Quote) -> dict[str, Greeks]:
        """Greeks at the implied volatility of the bid, ask and last, and the model's own;
        a price no volatility explains (at or below intrinsic value) gets none, as at IB."""
        t = self.clock.now().timestamp()
        found = {"model": self.option_greeks(inst, t)}
        spot = found["model"].underlying
        years = (_option_expiry(inst.last_trade_date) - t) / walk.SECONDS_PER_YEAR
        for name, price in (("bid", quote.bid), ("ask", quote.ask), ("last", quote.last)):
            vol = options.implied_vol(inst.right, spot, inst.strike, years, price)
            if vol > 0 and years > 0:
                found[name] = self.option_greeks(inst, t, vol)
        return found

    @staticmethod
    def _carry(inst: Instrument, t: float) -> float:
        years = max(0.0, (_expiry_epoch(inst.last_trade_date) - t) / walk.SECONDS_PER_YEAR)
        return 1.0 + _FUTURE_CARRY_PER_YEAR * years

    def quote(self, inst: Instrument) -> Quote:
        """Top of book at the clock's current time (deterministic for seed, inst, second)."""
        return self.quote_at(inst, self.clock.now())

    def quote_at(self, inst: Instrument, now: datetime) -> Quote:
        """Top of book at any instant (an opening auction is priced at the open)."""
        t = math.floor(now.timestamp())
        mid = self.mid(inst, t)
        bid, ask = self.bid_ask(inst, mid)
        previous = hours.previous_close(kind(inst), now).timestamp()
        unit = _SIZE_UNIT[inst.sec_type]
        return Quote(
            bid=bid,
            ask=ask,
            last=round_tick(mid, inst.min_tick),
            close=round_tick(self.mid(inst, previous), inst.min_tick),
            bid_size=unit * (1 + int(walk.uniform(self.seed, inst.con_id, t, "b") * 20)),
            ask_size=unit * (1 + int(walk.uniform(self.seed, inst.con_id, t, "a") * 20)),
            last_size=unit * (1 + int(walk.uniform(self.seed, inst.con_id, t, "l") * 5)),
            volume=self._day_volume(inst, now),
        )

    def depth(self, inst: Instrument, rows: int) -> list[DepthLevel]:
        """An order book of ``rows`` levels a side around the current quote: one tick apart,
        the touch with the quote's sizes, deeper sizes drawn per level and second."""
        quote = self.quote(inst)
        t = math.floor(self.clock.now().timestamp())
        unit = _SIZE_UNIT[inst.sec_type]
        sides = ((0, quote.ask, quote.ask_size, 1), (1, quote.bid, quote.bid_size, -1))
        levels = []
        for side, touch, size, step in sides:
            for n in range(rows):
                deeper = unit * (1 + int(walk.uniform(self.seed, inst.con_id, t, side, n) * 40))
                price = round_tick(touch + step * n * inst.min_tick, inst.min_tick)
                levels.append(DepthLevel(side, n, price, size if n == 0 else deeper))
        return levels

    @staticmethod
    def bid_ask(inst: Instrument, mid: float) -> tuple[float, float]:
        """Bid and ask around ``mid``: a spread of a few ticks, both on the tick grid."""
        spread = _SPREAD_TICKS[inst.sec_type] * inst.min_tick
        if not spread:  # an index has no book: bid = ask = last
            price = round_tick(mid, inst.min_tick)
            return price, price
        steps = max(0, math.floor((mid - spread / 2) / inst.min_tick))  # options: bid 0 at worst
        bid = round_tick(steps * inst.min_tick, inst.min_tick)
        return bid, round_tick(bid + spread, inst.min_tick)

    @staticmethod
    def average_daily_volume(inst: Instrument) -> float:
        """The volume of a full regular session (ibsim's days are all alike)."""
        return _DAILY_VOLUME[inst.sec_type]

    def _day_volume(self, inst: Instrument, now: datetime) -> float:
        session = hours.session_at(kind(inst), now, rth=True)
        if session is None:
            return 0.0
        share = (now - session.open) / (session.close - session.open)
        return float(round(_DAILY_VOLUME[inst.sec_type] * share))

    def fx_rate(self, currency: str, base: str) -> float:
        """Units of ``base`` per unit of ``currency`` at the clock's time (mid)."""
        if currency == base:
            return 1.0
        t = math.floor(self.clock.now().timestamp())
        return self.usd_per(currency, t) / self.usd_per(base, t)

    def is_open(self, inst: Instrument, *, outside_rth: bool = False) -> bool:
        """Whether ``inst`` trades now: liquid hours for stocks and the index (extended hours
        with ``outside_rth``), the full session for futures and FX (Globex and IDEALPRO fill
        around the clock)."""
        rth = inst.sec_type in (SecType.STOCK, SecType.INDEX) and not outside_rth
        return hours.is_open(kind(inst), self.clock.now(), rth=rth)

    def day_order_expiry(
        self, inst: Instrument, placed: datetime, *, outside_rth: bool = False
    ) -> datetime:
        """When a DAY order placed at ``placed`` expires: the close of that trading day (for a
        stock with outsideRth, the end of its extended hours, 20:00 New York)."""
        rth = inst.sec_type in (SecType.STOCK, SecType.INDEX) and not outside_rth
        return hours.close_after(kind(inst), placed, rth=rth)

    def next_open(self, inst: Instrument, after: datetime) -> datetime:
        """The regular session open at or after ``after`` (an opening auction's time)."""
        return hours.open_after(kind(inst), after, rth=True)

    def bars(
        self,
        inst: Instrument,
        *,
        end: datetime,
        duration: str,
        bar_size: str,
        what_to_show: str,
        use_rth: bool,
        format_date: int,
    ) -> list[Bar]:
        """Historical bars ending at ``end`` (clamped to now), IB duration/bar-size strings.

        Raises:
            ValueError: unknown duration, bar size or what_to_show, or TRADES for FX.
        """
        spec = bars_mod.BarRequest(
            inst=inst,
            end=min(_aware(end), self.clock.now()),
            duration=duration,
            bar_size=bar_size,
            what_to_show=what_to_show.upper(),
            use_rth=use_rth,
            format_date=format_date,
        )
        vol = _ANNUAL_VOL[inst.sec_type]
        return bars_mod.build(spec, lambda t: self.mid(inst, t), self.seed, vol)


@functools.cache
def _option_expiry(last_trade_date: str) -> float:
    day = datetime.strptime(last_trade_date, "%Y%m%d").date()
    return datetime.combine(day, _EXPIRY_CLOSE, hours.EASTERN).timestamp()


@functools.cache
def _expiry_epoch(last_trade_date: str) -> float:
    return datetime.strptime(last_trade_date, "%Y%m%d").replace(tzinfo=UTC).timestamp()


def _normalise_seed(name: str, value: float) -> dict[str, float]:
    """Scenario price seeds by symbol; FX pairs become USD-per-unit currency seeds."""
    if "." not in name:
        return {name.upper(): value}
    base, quote = name.upper().split(".")
    if quote == "USD":
        return {base: value}
    if base == "USD":
        return {quote: 1 / value}
    return {}  # cross pairs follow from their USD legs


def round_tick(price: float, tick: float) -> float:
    """Round to the nearest multiple of ``tick`` without float dust."""
    digits = max(0, -math.floor(math.log10(tick))) + 2
    return round(round(price / tick) * tick, digits)
