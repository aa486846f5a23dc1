"""Per-account cash, positions and P&L, valued with the market's prices and FX rates.

Cash is kept per currency. A stock or ETF trade moves its notional in the instrument currency;
an FX trade moves both legs (EUR.USD BUY 20,000 = +20,000 EUR, -20,000 x price USD) and its
"position" is only a view of that cash for the portfolio; a futures trade moves no notional:
its P&L reaches cash when the position is reduced, and until then counts as FuturesPNL.
An FX order routed to FXCONV is a conversion: both cash legs move, no position is kept, so it
carries no FX margin (as at IB).
Commissions always leave cash in their own currency.

Average cost follows IB: it includes commissions (per unit, times the multiplier in reports),
and a reducing fill's realized P&L is (price - avg cost) x quantity x multiplier minus that
fill's commission, so a round trip's realized P&L equals its net cash effect.

Margin (documented simplification of Reg T intraday): stocks ``stock_initial`` /
``stock_maintenance`` of gross value, futures a fixed amount per contract, FX positions ``fx``
of their base-currency value. EquityWithLoanValue = NetLiquidation; AvailableFunds = ELV -
InitMarginReq; ExcessLiquidity = ELV - MaintMarginReq; BuyingPower = 4 x AvailableFunds.
Futures margins are the scenario's per-MES-contract figures times the contract's size in MES
contracts (ES 10, NQ 14, MNQ 1.4; see ibsim.catalog). Long options are paid in full (no
margin); written options carry the stock margin of their underlying.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ibsim.market import Market
from ibsim.model import Instrument, PortfolioItem, Position, SecType
from ibsim.scenario import Margin, Scenario

_EPSILON = 1e-9


@dataclass
class Holding:
    """One position: ``avg_price`` is the plain trade price, ``avg_cost`` includes commissions."""

    quantity: float = 0.0
    avg_price: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0  # in the instrument's currency, since the run started


@dataclass
class Book:
    """One account's ledger."""

    account: str
    base: str
    cash: dict[str, float] = field(default_factory=dict)
    holdings: dict[int, Holding] = field(default_factory=dict)
    realized: dict[str, float] = field(default_factory=dict)  # by currency


@dataclass
class CurrencyFigures:
    """Ledger figures in one currency (``rate`` converts them to the base currency)."""

    rate: float
    cash: float = 0.0
    stock_value: float = 0.0
    option_value: float = 0.0
    futures_pnl: float = 0.0
    unrealized: float = 0.0
    realized: float = 0.0

    @property
    def net_liquidation(self) -> float:
        """Cash plus stock value plus unsettled futures P&L."""
        return self.cash + self.stock_value + self.option_value + self.futures_pnl


@dataclass
class Valuation:
    """An account valued at one instant; totals are in the base currency."""

    account: str
    base: str
    buying_power_multiple: float
    currencies: dict[str, CurrencyFigures] = field(default_factory=dict)
    init_margin: float = 0.0
    maint_margin: float = 0.0
    gross_position_value: float = 0.0
    futures_init_margin: float = 0.0  # the commodities ("-C") segment's share of the margins
    futures_maint_margin: float = 0.0

    def figures(self, currency: str, rate: Callable[[str], float]) -> CurrencyFigures:
        """The figures of one currency, created on first use with ``rate(currency)``."""
        if currency not in self.currencies:
            self.currencies[currency] = CurrencyFigures(rate=rate(currency))
        return self.currencies[currency]

    def add_margin(self, initial: float, maintenance: float, futures: bool) -> None:
        """Add one position's margin requirements (base currency)."""
        self.init_margin += initial
        self.maint_margin += maintenance
        if futures:
            self.futures_init_margin += initial
            self.futures_maint_margin += maintenance

    def total(self, name: str) -> float:
        """Sum of one CurrencyFigures attribute over currencies, in base currency."""
        return sum(getattr(f, name) * f.rate for f in self.currencies.values())

    @property
    def net_liquidation(self) -> float:
        """NetLiquidation in base currency."""
        return self.total("net_liquidation")

    @property
    def equity_with_loan(self) -> float:
        """EquityWithLoanValue (= NetLiquidation in this model)."""
        return self.net_liquidation

    @property
    def available_funds(self) -> float:
        """AvailableFunds: equity with loan minus initial margin."""
        return self.equity_with_loan - self.init_margin

    @property
    def excess_liquidity(self) -> float:
        """ExcessLiquidity: equity with loan minus maintenance margin."""
        return self.equity_with_loan - self.maint_margin

    @property
    def buying_power(self) -> float:
        """BuyingPower: a multiple of AvailableFunds, never negative."""
        return max(0.0, self.available_funds * self.buying_power_multiple)


def is_conversion(inst: Instrument) -> bool:
    """An FX trade routed to FXCONV: a currency conversion, not an FX position (IB)."""
    return inst.sec_type == SecType.CASH and inst.exchange == "FXCONV"


def multiplier(inst: Instrument) -> float:
    """Contract multiplier (1 for stocks and FX)."""
    return inst.multiplier or 1.0


class Ledger:
    """Books for every account of a scenario."""

    def __init__(self, market: Market, scenario: Scenario) -> None:
        self.market = market
        self.margin: Margin = scenario.options.margin
        self.books: dict[str, Book] = {}
        for spec in scenario.accounts:
            book = Book(spec.id, spec.base_currency, cash=dict(spec.cash))
            book.cash.setdefault(spec.base_currency, 0.0)
            for pos in spec.positions:
                inst = market.catalog.find(pos.instrument)
                price = pos.avg_price
                if pos.avg_cost is not None:
                    price = pos.avg_cost / multiplier(inst)
                book.holdings[inst.con_id] = Holding(pos.quantity, price, price)
            self.books[spec.id] = book

    # --- trading ------------------------------------------------------------------------
    def apply_fill(
        self,
        account: str,
        inst: Instrument,
        side: str,
        qty: float,
        price: float,
        fee: float,
        fee_ccy: str,
    ) -> float | None:
        """Book one execution; returns its realized P&L, or None if it only opened/added.

        Args:
            account: account id.
            inst: the instrument.
            side: "BOT" or "SLD" (BUY/SELL also accepted).
            qty: executed quantity (positive).
            price: execution price.
            fee: commission for this execution.
            fee_ccy: commission currency.
        """
        book = self.books[account]
        sign = 1.0 if side in ("BOT", "BUY") else -1.0
        self._move_cash(book, inst, sign * qty, price)
        book.cash[fee_ccy] = book.cash.get(fee_ccy, 0.0) - fee
        if is_conversion(inst):
            return None  # FXCONV: cash changes currency; no FX position, so no FX margin
        holding = book.holdings.setdefault(inst.con_id, Holding())
        realized, settled = _trade(holding, sign, qty, price, fee, multiplier(inst))
        if inst.sec_type == SecType.FUTURE:
            book.cash[inst.currency] = book.cash.get(inst.currency, 0.0) + settled
        if realized is not None:
            ccy = inst.currency
            book.realized[ccy] = book.realized.get(ccy, 0.0) + realized
        return realized

    @staticmethod
    def _move_cash(book: Book, inst: Instrument, signed_qty: float, price: float) -> None:
        if inst.sec_type == SecType.FUTURE:
            return  # no notional changes hands; P&L settles on reduction
        if inst.sec_type == SecType.CASH:
            book.cash[inst.symbol] = book.cash.get(inst.symbol, 0.0) + signed_qty
        cash = book.cash.get(inst.currency, 0.0)
        book.cash[inst.currency] = cash - signed_qty * price * multiplier(inst)

    # --- reporting ----------------------------------------------------------------------
    def _held(self, account: str) -> list[tuple[Instrument, Holding]]:
        book = self.books[account]
        by_id = self.market.catalog.by_con_id
        return [(by_id(cid), h) for cid, h in sorted(book.holdings.items())]

    def positions(self) -> list[Position]:
        """Every non-zero position of every account (avg cost x multiplier, as IB)."""
        return [
            Position(account, inst, h.quantity, h.avg_cost * multiplier(inst))
            for account in self.books
            for inst, h in self._held(account)
            if abs(h.quantity) > _EPSILON
        ]

    def mark(self, inst: Instrument) -> float:
        """The price positions are valued at: the last price."""
        return self.market.quote(inst).last

    def portfolio(self, account: str) -> list[PortfolioItem]:
        """Positions with market value and P&L (closed positions stay with their realized)."""
        items = []
        for inst, h in self._held(account):
            mult, price = multiplier(inst), self.mark(inst)
            value = h.quantity * price * mult
            items.append(
                PortfolioItem(
                    account=account,
                    instrument=inst,
                    position=h.quantity,
                    market_price=price,
                    market_value=_money(value),
                    average_cost=h.avg_cost * mult,
                    unrealized_pnl=_money(value - h.quantity * h.avg_cost * mult),
                    realized_pnl=_money(h.realized),
                )
            )
        return items

    def valuation(self, account: str) -> Valuation:
        """Value an account now, per currency and in base currency."""
        book = self.books[account]
        v = Valuation(account, book.base, self.margin.buying_power_multiple)

        def rate(currency: str) -> float:
            return self.market.fx_rate(currency, book.base)

        for code, amount in book.cash.items():
            v.figures(code, rate).cash += amount
        for code, amount in book.realized.items():
            v.figures(code, rate).realized += amount
        for inst, h in self._held(account):
            if abs(h.quantity) > _EPSILON:
                self._value_holding(inst, h, v, v.figures(inst.currency, rate))
        return v

    def _value_holding(
        self, inst: Instrument, h: Holding, v: Valuation, fig: CurrencyFigures
    ) -> None:
        """Add one holding to its currency's figures and to the account's margins."""
        mult, price = multiplier(inst), self.mark(inst)
        value = h.quantity * price * mult
        fig.unrealized += value - h.quantity * h.avg_cost * mult
        if inst.sec_type == SecType.STOCK:
            fig.stock_value += value
            gross = abs(value) * fig.rate
            v.gross_position_value += gross
            m = self.margin
            v.add_margin(gross * m.stock_initial, gross * m.stock_maintenance, futures=False)
        elif inst.sec_type == SecType.OPTION:
            fig.option_value += value
            v.gross_position_value += abs(value) * fig.rate
            if h.quantity < 0:  # a long option is paid in full; a short one is margined
                short = self._short_option_margin(inst, -h.quantity) * fig.rate
                v.add_margin(short, short, futures=False)
        elif inst.sec_type == SecType.FUTURE:
            fig.futures_pnl += (price - h.avg_price) * h.quantity * mult
            contracts = abs(h.quantity) * inst.margin_units * fig.rate  # in MES contracts
            m = self.margin
            v.add_margin(contracts * m.future_initial, contracts * m.future_maintenance, True)
        else:  # FX: margin on the base-currency value of the bought or sold currency
            exposure = abs(h.quantity) * self.market.fx_rate(inst.symbol, v.base)
            v.add_margin(exposure * self.margin.fx, exposure * self.margin.fx, futures=False)

    def _short_option_margin(self, inst: Instrument, contracts: float) -> float:
        """A written option: the stock margin of its underlying (instrument currency)."""
        underlying = self.market.catalog.by_con_id(inst.underlying_con_id)
        notional = contracts * multiplier(inst) * self.mark(underlying)
        return notional * self.margin.stock_initial

    def initial_margin(
        self, account: str, inst: Instrument, qty: float, price: float, *, short: bool = False
    ) -> float:
        """Initial margin (base currency) that opening ``qty`` of ``inst`` at ``price`` needs
        (``short``: a sale that opens a short position; it matters for options)."""
        base = self.books[account].base
        if inst.sec_type == SecType.OPTION:
            rate = self.market.fx_rate(inst.currency, base)
            if short:
                return self._short_option_margin(inst, qty) * rate
            return qty * price * multiplier(inst) * rate  # the premium, paid in full
        if inst.sec_type == SecType.STOCK:
            value = qty * price * self.market.fx_rate(inst.currency, base)
            return value * self.margin.stock_initial
        if inst.sec_type == SecType.FUTURE:
            per_contract = self.margin.future_initial * inst.margin_units
            return qty * per_contract * self.market.fx_rate(inst.currency, base)
        if is_conversion(inst):
            return 0.0
        return qty * self.market.fx_rate(inst.symbol, base) * self.margin.fx

    def opening_quantity(self, account: str, inst: Instrument, signed_qty: float) -> float:
        """How much of a signed order quantity would open or add to a position."""
        held = self.books[account].holdings.get(inst.con_id, Holding()).quantity
        if held * signed_qty >= 0:
            return abs(signed_qty)
        return max(0.0, abs(signed_qty) - abs(held))

    # --- persistence --------------------------------------------------------------------
    def to_json(self) -> dict:
        """Plain-data snapshot of every book."""
        return {a: asdict(b) for a, b in self.books.items()}

    def load_json(self, data: dict) -> None:
        """Replace the books with a :meth:`to_json` snapshot."""
        for account, raw in data.items():
            holdings = {int(k): Holding(**v) for k, v in raw["holdings"].items()}
            self.books[account] = Book(
                raw["account"], raw["base"], dict(raw["cash"]), holdings, dict(raw["realized"])
            )


def _trade(
    h: Holding, sign: float, qty: float, price: float, fee: float, mult: float
) -> tuple[float | None, float]:
    """Apply a fill to a holding: returns (realized P&L or None, futures cash settlement)."""
    held_sign = math.copysign(1.0, h.quantity) if abs(h.quantity) > _EPSILON else sign
    if held_sign == sign:
        _add(h, sign, qty, price, fee / mult)
        return None, 0.0
    closed = min(qty, abs(h.quantity))
    fee_closed = fee * closed / qty
    realized = (price - h.avg_cost) * closed * held_sign * mult - fee_closed
    settled = (price - h.avg_price) * closed * held_sign * mult
    h.realized += realized
    h.quantity += sign * closed
    if abs(h.quantity) <= _EPSILON:
        h.quantity, h.avg_price, h.avg_cost = 0.0, 0.0, 0.0
    if qty - closed > _EPSILON:
        _add(h, sign, qty - closed, price, (fee - fee_closed) / mult)
    return realized, settled


def _add(h: Holding, sign: float, qty: float, price: float, unit_fee: float) -> None:
    """Open or add: average the trade price, and the cost with the commission folded in.

    ``unit_fee`` is the commission divided by the multiplier (cost is kept per unit).
    """
    held = abs(h.quantity)
    total = held + qty
    h.avg_price = (held * h.avg_price + qty * price) / total
    h.avg_cost = (held * h.avg_cost + qty * price + sign * unit_fee) / total
    h.quantity += sign * qty


def _money(value: float) -> float:
    return round(value, 2)
