"""What-if orders: the margin and commission an order would cost, without placing it.

IB answers ``order.whatIf=True`` with an openOrder whose order state carries initial and
maintenance margin and equity with loan before, change and after, plus a commission estimate
(``minCommission`` / ``maxCommission``; ``commission`` itself stays unset). ibsim fills the order
hypothetically on a copy of the account's book at the price a buying-power check assumes, and
values the copy with its own margin model (see ibsim/ledger.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ibsim import orders
from ibsim.ledger import Ledger, Valuation
from ibsim.model import Instrument, OrderRequest
from ibsim.scenario import Commissions


@dataclass(frozen=True)
class Margins:
    """Initial margin, maintenance margin and equity with loan (base currency)."""

    initial: float
    maintenance: float
    equity_with_loan: float

    @classmethod
    def of(cls, valuation: Valuation) -> Margins:
        v = valuation
        return cls(v.init_margin, v.maint_margin, v.equity_with_loan)

    def minus(self, other: Margins) -> Margins:
        return Margins(
            self.initial - other.initial,
            self.maintenance - other.maintenance,
            self.equity_with_loan - other.equity_with_loan,
        )


@dataclass(frozen=True)
class WhatIf:
    """One what-if answer."""

    before: Margins
    after: Margins
    commission: float
    commission_currency: str

    @property
    def change(self) -> Margins:
        return self.after.minus(self.before)


def estimate(
    ledger: Ledger, schedule: Commissions, req: OrderRequest, inst: Instrument, price: float
) -> WhatIf:
    """What ``req`` would do to its account if it filled completely at ``price``."""
    account, qty = req.account, req.total_quantity
    usd = ledger.market.fx_rate(inst.currency, "USD")
    notional = qty * price * (inst.multiplier or 1.0)
    fee = orders.order_commission(inst, schedule, qty, notional, usd)
    before = Margins.of(ledger.valuation(account))
    saved = ledger.books[account]
    ledger.books[account] = copy.deepcopy(saved)
    try:
        side = "BOT" if orders.sign(req) > 0 else "SLD"
        ledger.apply_fill(account, inst, side, qty, price, fee, inst.currency)
        after = Margins.of(ledger.valuation(account))
    finally:
        ledger.books[account] = saved
    return WhatIf(before, after, fee, inst.currency)
