"""reqPnL / reqPnLSingle figures from the ledger, in the account's base currency.

IB's daily P&L is the change since the previous close; ibsim values every holding against the
previous session's close (as if held overnight) and counts all realized P&L since the broker's
state began as today's (a documented simplification; see docs/ibsim-fidelity.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from ibsim.ledger import Ledger, multiplier


@dataclass(frozen=True)
class PnL:
    """One account's figures: daily, unrealized and realized P&L."""

    daily: float
    unrealized: float
    realized: float


@dataclass(frozen=True)
class PnLSingle:
    """One position's figures, as reqPnLSingle reports them."""

    position: float
    daily: float
    unrealized: float
    realized: float
    value: float


def account_pnl(ledger: Ledger, account: str) -> PnL:
    """The account's P&L now (zeros for an account without positions or trades)."""
    valuation = ledger.valuation(account)
    held = ledger.books[account].holdings  # closed positions too: their realized P&L counts
    daily = sum(position_pnl(ledger, account, con_id).daily for con_id in held)
    unrealized, realized = valuation.total("unrealized"), valuation.total("realized")
    return PnL(_money(daily), _money(unrealized), _money(realized))


def position_pnl(ledger: Ledger, account: str, con_id: int) -> PnLSingle:
    """One position's P&L now (zeros when the account does not hold it)."""
    holding = ledger.books[account].holdings.get(con_id)
    if holding is None:
        return PnLSingle(0.0, 0.0, 0.0, 0.0, 0.0)
    inst = ledger.market.catalog.by_con_id(con_id)
    rate = ledger.market.fx_rate(inst.currency, ledger.books[account].base)
    quote = ledger.market.quote(inst)
    size = holding.quantity * multiplier(inst) * rate
    return PnLSingle(
        position=holding.quantity,
        daily=_money(size * (quote.last - quote.close) + holding.realized * rate),
        unrealized=_money(size * (quote.last - holding.avg_cost)),
        realized=_money(holding.realized * rate),
        value=_money(size * quote.last),
    )


def _money(value: float) -> float:
    return round(value, 2)
