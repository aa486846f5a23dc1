"""Account messages: positions, account values, portfolio, multi updates, summary, P&L."""

from __future__ import annotations

from ibsim.messages import Out, contract_fields, listing_exchange
from ibsim.model import AccountValue, PortfolioItem, Position
from ibsim.pnl import PnL, PnLSingle
from ibsim.wire import fmt_decimal, fmt_float


def position(pos: Position) -> list[str]:
    """``61, 3, account, contract(11), position, avgCost``."""
    inst = pos.instrument
    return [
        str(Out.POSITION_DATA),
        "3",
        pos.account,
        *contract_fields(inst, listing_exchange(inst)),
        fmt_decimal(pos.quantity),
        fmt_float(pos.avg_cost),
    ]


def position_end() -> list[str]:
    return [str(Out.POSITION_END), "1"]


def account_value(value: AccountValue) -> list[str]:
    """``6, 2, key, value, currency, account``."""
    return [str(Out.ACCT_VALUE), "2", value.key, value.value, value.currency, value.account]


def portfolio_value(item: PortfolioItem) -> list[str]:
    """``7, 8, contract (primaryExchange in the exchange slot), position, prices, P&L, account``."""
    inst = item.instrument
    return [
        str(Out.PORTFOLIO_VALUE),
        "8",
        *contract_fields(inst, inst.primary_exchange),
        fmt_decimal(item.position),
        fmt_float(item.market_price),
        fmt_float(item.market_value),
        fmt_float(item.average_cost),
        fmt_float(item.unrealized_pnl),
        fmt_float(item.realized_pnl),
        item.account,
    ]


def account_update_time(hh_mm: str) -> list[str]:
    return [str(Out.ACCT_UPDATE_TIME), "1", hh_mm]


def account_download_end(account: str) -> list[str]:
    return [str(Out.ACCT_DOWNLOAD_END), "1", account]


def account_update_multi(req_id: int, model_code: str, value: AccountValue) -> list[str]:
    """``73, 1, reqId, account, modelCode, key, value, currency``."""
    return [
        str(Out.ACCOUNT_UPDATE_MULTI),
        "1",
        str(req_id),
        value.account,
        model_code,
        value.key,
        value.value,
        value.currency,
    ]


def account_update_multi_end(req_id: int) -> list[str]:
    return [str(Out.ACCOUNT_UPDATE_MULTI_END), "1", str(req_id)]


def account_summary(req_id: int, value: AccountValue) -> list[str]:
    """``63, 1, reqId, account, tag, value, currency``."""
    return [
        str(Out.ACCOUNT_SUMMARY),
        "1",
        str(req_id),
        value.account,
        value.key,
        value.value,
        value.currency,
    ]


def account_summary_end(req_id: int) -> list[str]:
    return [str(Out.ACCOUNT_SUMMARY_END), "1", str(req_id)]


def position_multi(req_id: int, pos: Position, model_code: str) -> list[str]:
    """``71, 1, reqId, account, contract(11), position, avgCost, modelCode``."""
    inst = pos.instrument
    return [
        str(Out.POSITION_MULTI),
        "1",
        str(req_id),
        pos.account,
        *contract_fields(inst, listing_exchange(inst)),
        fmt_decimal(pos.quantity),
        fmt_float(pos.avg_cost),
        model_code,
    ]


def position_multi_end(req_id: int) -> list[str]:
    return [str(Out.POSITION_MULTI_END), "1", str(req_id)]


def pnl(req_id: int, figures: PnL) -> list[str]:
    """``94, reqId, dailyPnL, unrealizedPnL, realizedPnL`` (no version field)."""
    return [
        str(Out.PNL),
        str(req_id),
        fmt_float(figures.daily),
        fmt_float(figures.unrealized),
        fmt_float(figures.realized),
    ]


def pnl_single(req_id: int, figures: PnLSingle) -> list[str]:
    """``95, reqId, position, dailyPnL, unrealizedPnL, realizedPnL, value``."""
    return [
        str(Out.PNL_SINGLE),
        str(req_id),
        fmt_decimal(figures.position),
        fmt_float(figures.daily),
        fmt_float(figures.unrealized),
        fmt_float(figures.realized),
        fmt_float(figures.value),
    ]
