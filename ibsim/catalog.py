"""The built-in instrument catalog and IB-like contract resolution.

Resolution follows what a real gateway does for reqContractDetails: every field the client set
must match, the rest is free, so ``MES`` without an expiry returns each listed quarter and ``EUR``
without a currency returns every EUR pair. Trading and liquid hours are filled in at resolution
time for the week starting at the attached clock's date (IB sends about a week).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from ibsim import chain, hours
from ibsim.model import ContractQuery, Instrument, SecType, UnknownContract

if TYPE_CHECKING:
    from ibsim.market import Clock
    from ibsim.scenario import ExtraStocks

_STK_EXCHANGES = "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,ISLAND,DRCTEDGE,BEX,BATS,EDGEA,IEX"
_STK_ORDER_TYPES = "ACTVTIM,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,DAY,GTC,IOC,LMT,MKT,STP,STPLMT"
_FX_ORDER_TYPES = "ACTVTIM,AD,ADJUST,ALERT,ALGO,ALLOC,DAY,GTC,IOC,LMT,MKT,STP,STPLMT"
_FUT_ORDER_TYPES = "ACTVTIM,ADJUST,ALERT,ALLOC,DAY,GTC,IOC,LMT,MKT,STP,STPLMT"

# symbol, con_id, primary exchange, long name, stock type, industry, category, ISIN
_STOCKS = (
    ("SPY", 756733, "ARCA", "SPDR S&P 500 ETF TRUST", "ETF", "Funds", "Equity Fund",
     "US78462F1030"),
    ("QQQ", 320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1", "ETF", "Funds", "Equity Fund",
     "US46090E1038"),
    ("AAPL", 265598, "NASDAQ", "APPLE INC", "COMMON", "Technology", "Computers",
     "US0378331005"),
    ("MSFT", 272093, "NASDAQ", "MICROSOFT CORP", "COMMON", "Technology", "Software",
     "US5949181045"),
    # VIXY's CUSIP changes with ProShares' reverse splits: ibsim carries no ISIN for it.
    ("VIXY", 84622004, "BATS", "PROSHARES VIX SHORT-TERM FUT", "ETF", "Funds", "Equity Fund",
     ""),
    ("IEF", 15547816, "NASDAQ", "ISHARES 7-10 YEAR TREASURY BD", "ETF", "Funds", "Debt Fund",
     "US4642874402"),
    ("GLD", 51529211, "ARCA", "SPDR GOLD SHARES", "ETF", "Funds", "Commodity Fund",
     "US78463V1070"),
    ("TLT", 15547841, "NASDAQ", "ISHARES 20+ YEAR TREASURY BD", "ETF", "Funds", "Debt Fund",
     "US4642874329"),
    ("IBM", 8314, "NYSE", "INTL BUSINESS MACHINES CORP", "COMMON", "Technology", "Computers",
     "US4592001014"),
    ("AMZN", 3691937, "NASDAQ", "AMAZON.COM INC", "COMMON", "Communications", "Internet",
     "US0231351067"),
    ("TSLA", 76792991, "NASDAQ", "TESLA INC", "COMMON", "Consumer, Cyclical",
     "Auto Manufacturers", "US88160R1014"),
    ("NVDA", 4815747, "NASDAQ", "NVIDIA CORP", "COMMON", "Technology", "Semiconductors",
     "US67066G1040"),
    ("META", 107113386, "NASDAQ", "META PLATFORMS INC-CLASS A", "COMMON", "Communications",
     "Internet", "US30303M1027"),
    ("GOOGL", 208813719, "NASDAQ", "ALPHABET INC-CL A", "COMMON", "Communications", "Internet",
     "US02079K3059"),
)  # fmt: skip
_STK_RULE = "26"  # IB's market rule for US stocks: 0.01 from 0
# Synthetic stocks (scenario key extra_stocks) get conIds above every futures conId (prefix 4-7 +
# YYYYMMDD < 800,000,000) and below the option chain's (chain.BASE_ID): the base, plus the prefix
# read as a base-27 number (A=1 .. Z=26; "ZZZZ" = 531,440) times 1000, plus the stock's index.
_SYNTHETIC_BASE = 800_000_000
_SYNTHETIC_PRIMARY = "NYSE"
# base, quote, con_id, min tick
_FX_PAIRS = (
    ("EUR", "USD", 12087792, 0.00005),
    ("GBP", "USD", 12087797, 0.00005),
    ("USD", "CHF", 12087820, 0.00005),
    ("USD", "JPY", 15016059, 0.005),
    ("EUR", "GBP", 12087807, 0.00005),
    ("EUR", "JPY", 14321016, 0.005),
    ("EUR", "CHF", 12087802, 0.00005),
    ("GBP", "JPY", 14321015, 0.005),
    ("USD", "CAD", 15016062, 0.00005),
    ("AUD", "USD", 14433401, 0.00005),
)
_FX_ALIASES = frozenset({"IDEALPRO", "FXCONV"})
_FUT_ALIASES = frozenset({"CME", "GLOBEX"})  # GLOBEX: IB's former name for CME's futures
_QUARTER_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}
_FUT_YEARS = range(2020, 2031)
_LISTED_QUARTERS = 4


@dataclass(frozen=True)
class _FutureSpec:
    """One quarterly CME equity-index future: its conId prefix, size and margin."""

    prefix: str  # conIds are prefix + expiry (YYYYMMDD), e.g. MES Dec 2026 = 720261218
    multiplier: float
    long_name: str
    margin_units: float  # initial margin in MES contracts (the scenario's futures margin)


# Margins relative to MES follow the exchange's: ES 10x, NQ about 14x, MNQ about 1.4x.
_FUTURES = {
    "MES": _FutureSpec("7", 5.0, "Micro E-Mini S&P 500 Stock Price Index", 1.0),
    "ES": _FutureSpec("6", 50.0, "E-mini S&P 500", 10.0),
    "NQ": _FutureSpec("5", 20.0, "E-mini NASDAQ 100", 14.0),
    "MNQ": _FutureSpec("4", 2.0, "Micro E-Mini Nasdaq-100 Index", 1.4),
}


def _stock(symbol: str, con_id: int, primary: str, name: str, *rest: str) -> Instrument:
    stock_type, industry, category, isin = rest
    return Instrument(
        con_id=con_id,
        symbol=symbol,
        sec_type=SecType.STOCK,
        exchange="SMART",
        primary_exchange=primary,
        currency="USD",
        local_symbol=symbol,
        trading_class=symbol if primary != "NASDAQ" else "NMS",
        long_name=name,
        min_tick=0.01,
        order_types=_STK_ORDER_TYPES,
        valid_exchanges=_STK_EXCHANGES,
        # One rule per valid exchange, in the same order, as IB lists them.
        market_rule_ids=",".join([_STK_RULE] * len(_STK_EXCHANGES.split(","))),
        industry=industry,
        category=category,
        stock_type=stock_type,
        isin=isin,
    )


def _prefix_code(prefix: str) -> int:
    """The prefix as a base-27 number: distinct for every prefix of 1-4 letters A-Z."""
    code = 0
    for letter in prefix:
        code = code * 27 + ord(letter) - ord("A") + 1
    return code


def synthetic_stocks(prefix: str, count: int) -> list[Instrument]:
    """``count`` synthetic NYSE stocks ``<prefix>001`` .. (the scenario key ``extra_stocks``).

    Their conIds depend only on prefix and number, so a restart or another run of the same
    scenario finds the same contracts, and no two prefixes share one.
    """
    base = _SYNTHETIC_BASE + _prefix_code(prefix) * 1000
    stocks = []
    for n in range(1, count + 1):
        symbol = f"{prefix}{n:03d}"
        name = f"IBSIM SYNTHETIC STOCK {symbol}"
        stocks.append(_stock(symbol, base + n - 1, _SYNTHETIC_PRIMARY, name, "COMMON", "", "", ""))
    return stocks


def _fx(base: str, quote: str, con_id: int, tick: float) -> Instrument:
    pair = f"{base}.{quote}"
    return Instrument(
        con_id=con_id,
        symbol=base,
        sec_type=SecType.CASH,
        exchange="IDEALPRO",
        primary_exchange="",
        currency=quote,
        local_symbol=pair,
        trading_class=pair,
        long_name=f"{base} {quote}",
        min_tick=tick,
        order_types=_FX_ORDER_TYPES,
        valid_exchanges="IDEALPRO",
        # 239 is IB's IDEALPRO rule for 0.00005 pairs; ibsim numbers the 0.005 (JPY) rule 240.
        market_rule_ids="240" if tick >= 0.001 else "239",
        min_size=1.0,
        size_increment=1.0,
    )


def third_friday(year: int, month: int) -> date:
    """The third Friday of a month: the quarterly equity-index futures expiry."""
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def _future(symbol: str, expiry: date) -> Instrument:
    spec = _FUTURES[symbol]
    code = _QUARTER_CODES[expiry.month]
    return Instrument(
        con_id=int(f"{spec.prefix}{expiry:%Y%m%d}"),
        symbol=symbol,
        sec_type=SecType.FUTURE,
        exchange="CME",
        primary_exchange="",
        currency="USD",
        local_symbol=f"{symbol}{code}{expiry.year % 10}",
        trading_class=symbol,
        long_name=spec.long_name,
        min_tick=0.25,
        multiplier=spec.multiplier,
        last_trade_date=f"{expiry:%Y%m%d}",
        time_zone="US/Central",
        order_types=_FUT_ORDER_TYPES,
        valid_exchanges="CME",
        market_rule_ids="67",
        margin_units=spec.margin_units,
    )


def _index(symbol: str, con_id: int, long_name: str) -> Instrument:
    return Instrument(
        con_id=con_id,
        symbol=symbol,
        sec_type=SecType.INDEX,
        exchange="CBOE",
        primary_exchange="",
        currency="USD",
        local_symbol=symbol,
        trading_class=symbol,
        long_name=long_name,
        min_tick=0.01,
        order_types="",
        valid_exchanges="CBOE",
        market_rule_ids="2",
    )


# Options trade regular hours only, which is how the "ind" kind's sessions run.
_KINDS = {SecType.STOCK: "stk", SecType.INDEX: "ind", SecType.OPTION: "ind", SecType.FUTURE: "fut"}


def kind(inst: Instrument) -> str:
    """The hours kind of an instrument ("stk", "ind", "fut", "fx")."""
    return _KINDS.get(inst.sec_type, "fx")


class Catalog:
    """A fixed set of instruments; see :meth:`builtin`."""

    def __init__(self, instruments: list[Instrument], clock: Clock | None = None) -> None:
        self._by_id = {i.con_id: i for i in instruments}
        self._chains: dict[date, list[Instrument]] = {}
        self.clock = clock  # Market attaches its clock: it decides listed expiries and hours

    @classmethod
    def builtin(cls, extra_stocks: ExtraStocks | None = None) -> Catalog:
        """Fourteen US stocks and ETFs, ten FX pairs, quarterly MES, ES, NQ and MNQ futures,
        the SPX and VIX indexes; plus a scenario's synthetic stocks (``extra_stocks``)."""
        instruments = [_stock(*row) for row in _STOCKS]
        if extra_stocks is not None:
            instruments += synthetic_stocks(extra_stocks.prefix, extra_stocks.count)
        instruments += [_fx(*row) for row in _FX_PAIRS]
        instruments += [
            _future(symbol, third_friday(y, m))
            for symbol in _FUTURES
            for y in _FUT_YEARS
            for m in _QUARTER_CODES
        ]
        instruments.append(_index("SPX", 416904, "S&P 500 Stock Index"))
        instruments.append(_index("VIX", 13455763, "CBOE Volatility Index"))
        return cls(instruments)

    def _today(self) -> date:
        now = self.clock.now() if self.clock else datetime.now(UTC)
        return hours.local_day("stk", now)

    def by_con_id(self, con_id: int) -> Instrument:
        """The instrument with this conId (expired futures included).

        Raises:
            UnknownContract: no such conId.
        """
        if con_id in self._by_id:
            return self._by_id[con_id]
        decoded = chain.decode(con_id)
        underlying = self._by_id.get(chain.UNDERLYING_CON_ID)
        if decoded is None or underlying is None:
            raise UnknownContract(f"No security definition has been found for conId {con_id}")
        return chain.option(underlying, *decoded)

    def all(self) -> list[Instrument]:
        """Every instrument, expired futures included."""
        return list(self._by_id.values())

    def listed(self) -> list[Instrument]:
        """Instruments a client can find now: futures only for their next listed quarters."""
        today = f"{self._today():%Y%m%d}"
        upcoming = sorted(
            (i for i in self._by_id.values() if i.last_trade_date >= today),
            key=lambda i: i.last_trade_date,
        )
        by_symbol: dict[str, list[Instrument]] = {}
        for future in upcoming:
            by_symbol.setdefault(future.symbol, []).append(future)
        futures = [f for group in by_symbol.values() for f in group[:_LISTED_QUARTERS]]
        others = [i for i in self._by_id.values() if not i.last_trade_date]
        return others + futures + self._options(self._today())

    def _options(self, today: date) -> list[Instrument]:
        """The option chain listed on ``today`` (built once per day)."""
        underlying = self._by_id.get(chain.UNDERLYING_CON_ID)
        if underlying is None:
            return []  # a catalog without SPY has no chain
        if today not in self._chains:
            self._chains = {today: chain.listed(underlying, today)}
        return self._chains[today]

    def resolve(self, q: ContractQuery) -> list[Instrument]:
        """Every instrument matching all fields the query sets, with hours filled in.

        Raises:
            UnknownContract: nothing matches (IB error 200).
        """
        if q.con_id:
            return [self.present(self.by_con_id(q.con_id), q.exchange)]
        if not q.names_something:
            raise UnknownContract(
                "No security definition has been found for the request (no conId, symbol, "
                "local symbol or security id)"
            )
        found = [i for i in self.listed() if _matches(i, q)]
        if not found:
            raise UnknownContract("No security definition has been found for the request")
        return [self.present(i, q.exchange) for i in found]

    def present(self, inst: Instrument, exchange: str = "") -> Instrument:
        """The instrument as contract details show it now: hours for this week, FXCONV kept."""
        k, today = kind(inst), self._today()
        shown = dataclasses.replace(
            inst,
            time_zone=hours.KIND_TZ[k],
            trading_hours=hours.hours_string(k, today, rth=False),
            liquid_hours=hours.hours_string(k, today, rth=True),
        )
        if inst.sec_type == SecType.CASH and exchange.upper() == "FXCONV":
            shown = dataclasses.replace(shown, exchange="FXCONV")
        return shown

    def find(self, key: str | int) -> Instrument:
        """Scenario lookup: a conId, an FX pair ("EUR.USD"), a local symbol ("MESZ6") or a
        symbol (futures: the front listed quarter).

        Raises:
            UnknownContract: nothing matches.
        """
        if isinstance(key, int) or str(key).isdigit():
            return self.by_con_id(int(key))
        text = str(key).upper()
        for field in ("local_symbol", "symbol"):
            found = [i for i in self.listed() if getattr(i, field).upper() == text]
            if found:
                return min(found, key=lambda i: i.last_trade_date)
        raise UnknownContract(f"No instrument {key!r} in the catalog")


def _matches(inst: Instrument, q: ContractQuery) -> bool:
    if not _option_fields_match(inst, q):
        return False
    if q.sec_id and not _sec_id_matches(inst, q):
        return False
    checks = (
        (q.symbol, inst.symbol),
        (q.sec_type, inst.sec_type.value),
        (q.currency, inst.currency),
        (q.local_symbol, inst.local_symbol),
        (q.trading_class, inst.trading_class),
        (q.primary_exchange, inst.primary_exchange),
    )
    if any(asked and asked.upper() != have.upper() for asked, have in checks):
        return False
    if q.last_trade_date and not inst.last_trade_date.startswith(q.last_trade_date):
        return False
    if q.multiplier and float(q.multiplier) != inst.multiplier:
        return False
    return not q.exchange or _exchange_ok(inst, q.exchange.upper())


def _option_fields_match(inst: Instrument, q: ContractQuery) -> bool:
    """Strike and right: options only, and an option only for a query that asks for one
    (secType OPT, a strike, a right or its local symbol), so "SPY" alone stays the stock."""
    right = q.right.upper() if q.right not in ("", "0", "?") else ""
    if inst.sec_type != SecType.OPTION:
        return not q.strike and not right
    if not (q.sec_type or q.strike or right or q.local_symbol):
        return False
    strike_ok = not q.strike or abs(q.strike - inst.strike) < 1e-6
    return strike_ok and (not right or chain.RIGHTS.get(right) == inst.right)


def _sec_id_matches(inst: Instrument, q: ContractQuery) -> bool:
    # ISIN is the only security id type ibsim knows (CUSIP needs a licence at IB anyway).
    return q.sec_id_type.upper() in ("", "ISIN") and inst.isin == q.sec_id.strip().upper()


def _exchange_ok(inst: Instrument, exchange: str) -> bool:
    if inst.sec_type == SecType.CASH:
        return exchange in _FX_ALIASES
    if inst.sec_type == SecType.FUTURE:
        return exchange in _FUT_ALIASES
    names = {inst.exchange, inst.primary_exchange, *inst.valid_exchanges.split(",")}
    return exchange in names
