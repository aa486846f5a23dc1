"""Account values as IB reports them: the reqAccountUpdates set and reqAccountSummary rows.

A real paper session sends the base-currency figures, most with ``-C`` (commodities: futures)
and ``-S`` (securities) segment variants, and the ledger figures once with currency ``BASE`` and
once per held currency. Here the futures margins and unsettled futures P&L form the C segment
and everything else (cash, stocks, FX) the S segment.
"""

from __future__ import annotations

from collections.abc import Callable

from ibsim.ledger import CurrencyFigures, Valuation
from ibsim.model import AccountValue

# Ledger keys sent per currency and for BASE; values read from CurrencyFigures (None = zero).
LEDGER_KEYS: dict[str, str | None] = {
    "AccruedCash": None,
    "CashBalance": "cash",
    "CorporateBondValue": None,
    "ExchangeRate": "rate",
    "FundValue": None,
    "FutureOptionValue": None,
    "FuturesPNL": "futures_pnl",
    "FxCashBalance": None,
    "IssuerOptionValue": None,
    "MoneyMarketFundValue": None,
    "MutualFundValue": None,
    "NetDividend": None,
    "NetLiquidationByCurrency": "net_liquidation",
    "OptionMarketValue": "option_value",
    "RealizedPnL": "realized",
    "StockMarketValue": "stock_value",
    "TBillValue": None,
    "TBondValue": None,
    "TotalCashBalance": "cash",
    "UnrealizedPnL": "unrealized",
    "WarrantValue": None,
}


def _c_funds(v: Valuation) -> float:
    return v.total("futures_pnl") - v.futures_init_margin


def _c_excess(v: Valuation) -> float:
    return v.total("futures_pnl") - v.futures_maint_margin


# Base-currency figures: name -> (value in base, value of the C segment). S = total - C.
_SEGMENTED: dict[str, Callable[[Valuation], tuple[float, float]]] = {
    "AccruedCash": lambda v: (0.0, 0.0),
    "AvailableFunds": lambda v: (v.available_funds, _c_funds(v)),
    "EquityWithLoanValue": lambda v: (v.equity_with_loan, v.total("futures_pnl")),
    "ExcessLiquidity": lambda v: (v.excess_liquidity, _c_excess(v)),
    "FullAvailableFunds": lambda v: (v.available_funds, _c_funds(v)),
    "FullExcessLiquidity": lambda v: (v.excess_liquidity, _c_excess(v)),
    "FullInitMarginReq": lambda v: (v.init_margin, v.futures_init_margin),
    "FullMaintMarginReq": lambda v: (v.maint_margin, v.futures_maint_margin),
    "InitMarginReq": lambda v: (v.init_margin, v.futures_init_margin),
    "LookAheadAvailableFunds": lambda v: (v.available_funds, _c_funds(v)),
    "LookAheadExcessLiquidity": lambda v: (v.excess_liquidity, _c_excess(v)),
    "LookAheadInitMarginReq": lambda v: (v.init_margin, v.futures_init_margin),
    "LookAheadMaintMarginReq": lambda v: (v.maint_margin, v.futures_maint_margin),
    "MaintMarginReq": lambda v: (v.maint_margin, v.futures_maint_margin),
    "NetLiquidation": lambda v: (v.net_liquidation, v.total("futures_pnl")),
    "PostExpirationExcess": lambda v: (0.0, 0.0),
    "PostExpirationMargin": lambda v: (0.0, 0.0),
    "TotalCashValue": lambda v: (v.total("cash"), 0.0),
}

# Single base-currency figures (no segment variants).
_PLAIN: dict[str, Callable[[Valuation], float]] = {
    "BuyingPower": lambda v: v.buying_power,
    "GrossPositionValue": lambda v: v.gross_position_value,
    "NetLiquidationUncertainty": lambda v: 0.0,
    "PreviousDayEquityWithLoanValue": lambda v: v.equity_with_loan,
    "RegTEquity": lambda v: v.equity_with_loan,
    "RegTMargin": lambda v: v.init_margin - v.futures_init_margin,
    "SMA": lambda v: max(0.0, v.available_funds),
    "SettledCash": lambda v: v.total("cash"),
    "StockMarketValue": lambda v: v.total("stock_value"),
    "FuturesPNL": lambda v: v.total("futures_pnl"),
}

# reqAccountSummary's standard tags (AccountSummaryTags.AllTags).
SUMMARY_TAGS = [
    "AccountType",
    "NetLiquidation",
    "TotalCashValue",
    "SettledCash",
    "AccruedCash",
    "BuyingPower",
    "EquityWithLoanValue",
    "PreviousDayEquityWithLoanValue",
    "GrossPositionValue",
    "RegTEquity",
    "RegTMargin",
    "SMA",
    "InitMarginReq",
    "MaintMarginReq",
    "AvailableFunds",
    "ExcessLiquidity",
    "Cushion",
    "FullInitMarginReq",
    "FullMaintMarginReq",
    "FullAvailableFunds",
    "FullExcessLiquidity",
    "LookAheadNextChange",
    "LookAheadInitMarginReq",
    "LookAheadMaintMarginReq",
    "LookAheadAvailableFunds",
    "LookAheadExcessLiquidity",
    "HighestSeverity",
    "DayTradesRemaining",
    "Leverage",
]


def money(value: float) -> str:
    """IB's money text: two decimals."""
    return f"{value:.2f}"


def _rate(value: float) -> str:
    return f"{value:.8g}" if value != 1.0 else "1.00"


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.6g}" if denominator else "0"


def base_figures(v: Valuation) -> dict[str, tuple[str, str]]:
    """Every base-currency figure: key -> (value text, currency)."""
    rows: dict[str, tuple[str, str]] = {}
    for key, get in _SEGMENTED.items():
        total, commodities = get(v)
        rows[key] = (money(total), v.base)
        rows[f"{key}-C"] = (money(commodities), v.base)
        rows[f"{key}-S"] = (money(total - commodities), v.base)
    for key, get in _PLAIN.items():
        rows[key] = (money(get(v)), v.base)
    rows.update(_static(v))
    return rows


def _static(v: Valuation) -> dict[str, tuple[str, str]]:
    nlv = v.net_liquidation
    return {
        "AccountCode": (v.account, ""),
        "AccountOrGroup": (v.account, v.base),
        "AccountReady": ("true", ""),
        "AccountType": ("INDIVIDUAL", ""),
        "Currency": (v.base, v.base),
        "Cushion": (_ratio(v.excess_liquidity, nlv), ""),
        "DayTradesRemaining": ("-1", ""),
        "HighestSeverity": ("0", ""),
        "Leverage-S": (_ratio(v.gross_position_value, nlv), ""),
        "LookAheadNextChange": ("0", ""),
        "NLVAndMarginInReview": ("false", ""),
        "RealCurrency": (v.base, v.base),
        "SegmentTitle-C": ("US Commodities", ""),
        "SegmentTitle-S": ("US Securities", ""),
        "TradingType-S": ("STKNOPT", ""),
        "WhatIfPMEnabled": ("true", ""),
    }


def ledger_rows(v: Valuation, currency: str) -> list[AccountValue]:
    """The ledger keys for one currency, or for ``BASE`` (everything converted)."""
    if currency == "BASE":
        fig = _base_ledger(v)
    else:
        fig = v.currencies.get(currency) or CurrencyFigures(rate=0.0)
    rows = []
    for key, attr in LEDGER_KEYS.items():
        value = getattr(fig, attr) if attr else 0.0
        text = _rate(value) if key == "ExchangeRate" else money(value)
        rows.append(AccountValue(key, text, currency, v.account))
    rows.append(AccountValue("RealCurrency", currency, currency, v.account))
    return rows


def _base_ledger(v: Valuation) -> CurrencyFigures:
    names = ("cash", "stock_value", "option_value", "futures_pnl", "unrealized", "realized")
    return CurrencyFigures(rate=1.0, **{n: v.total(n) for n in names})


def account_values(v: Valuation) -> list[AccountValue]:
    """The reqAccountUpdates set: base figures, then the ledger for BASE and each currency."""
    rows = [AccountValue(k, val, ccy, v.account) for k, (val, ccy) in base_figures(v).items()]
    for currency in ["BASE", *sorted(v.currencies)]:
        rows.extend(ledger_rows(v, currency))
    return rows


def account_summary(v: Valuation, tags: list[str]) -> list[AccountValue]:
    """reqAccountSummary rows for ``tags`` (standard tags, ``$LEDGER``, ``$LEDGER:ALL``,
    ``$LEDGER:<CCY>``); unknown tags are skipped like IB does."""
    figures = base_figures(v)
    rows: list[AccountValue] = []
    for tag in (t.strip() for t in tags if t.strip()):
        if tag.upper().startswith("$LEDGER"):
            rows.extend(_ledger_tag(v, tag.upper()))
        elif tag in figures:
            value, currency = figures[tag]
            rows.append(AccountValue(tag, value, currency, v.account))
        elif tag == "Leverage":
            rows.append(AccountValue(tag, figures["Leverage-S"][0], "", v.account))
    return rows


def _ledger_tag(v: Valuation, tag: str) -> list[AccountValue]:
    if tag == "$LEDGER":
        return ledger_rows(v, "BASE")
    if tag == "$LEDGER:ALL":
        return [r for c in ["BASE", *sorted(v.currencies)] for r in ledger_rows(v, c)]
    currency = tag.split(":", 1)[1]
    return ledger_rows(v, currency) if currency in v.currencies else []
