"""The broker's matching engine: expiry, stop triggers, fills and what a fill sets off.

A mixin of :class:`ibsim.broker.Broker` (which owns the state, the ledger and the events);
kept apart so the broker module reads as placing / cancelling / querying, and this one as what
happens to working orders on every ``process()`` call.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ibsim import links, orders, state
from ibsim.ledger import Ledger
from ibsim.market import Market, ib_time
from ibsim.model import TERMINAL_STATUSES, Fill, Order, OrderStatus, Quote
from ibsim.scenario import Scenario

_EPSILON = 1e-9
WORKING = frozenset({OrderStatus.PRE_SUBMITTED, OrderStatus.SUBMITTED})


class Matcher:
    """Matching for the Broker; every attribute below is the Broker's."""

    _lock: threading.RLock
    _state: state.BrokerState
    _exec_prefix: str
    market: Market
    scenario: Scenario
    ledger: Ledger
    fills_frozen: bool
    fill_budget: int | None

    if TYPE_CHECKING:  # provided by Broker

        def _cancel(self, order: Order, text: str) -> None: ...
        def _finish(self, order: Order, status: OrderStatus, text: str) -> None: ...
        def _refresh_status(self, order: Order, quote: Quote) -> None: ...
        def _emit_status(self, order: Order) -> None: ...
        def _emit_fill(self, order: Order, fill: Fill) -> None: ...
        def save(self) -> None: ...

    def process(self) -> None:
        """Expire, trigger and fill working orders against the current quotes.

        At most one partial chunk (``partial_fill_size`` of the order's security type) fills
        per order per call; an IOC order then cancels whatever is left. Nothing fills while
        ``fills_frozen``; a ``fill_budget`` freezes fills once that many chunks have executed.
        """
        with self._lock:
            changed = False
            for order in [o for o in self._state.orders.values() if o.status in WORKING]:
                changed = self._step(order) or changed
            if changed:
                self.save()

    def _step(self, order: Order) -> bool:
        """Advance one working order; True when anything about it changed."""
        if order.status not in WORKING:
            return False  # cancelled or reduced away by its group earlier in this pass
        if self._expire(order):
            return True
        if self.fills_frozen or links.waiting_for_parent(self._state.orders, order):
            return False
        quote = self.market.quote(order.instrument)
        changed = self._trigger(order, quote)
        if order.request.tif.upper() == "OPG":
            return self._at_the_open(order) or changed
        price = orders.fill_price(order, quote)
        if order.status == OrderStatus.PRE_SUBMITTED or price is None:
            # Held until the session opens or the price comes; an IOC order gives up instead.
            return self._cancel_ioc(order) or changed
        chunk = self.scenario.options.partial_fill_size.get(order.instrument.sec_type.value, 0)
        self._execute(order, min(order.remaining, chunk or order.remaining), price)
        if order.status not in TERMINAL_STATUSES:
            self._cancel_ioc(order)
        return True

    def _expire(self, order: Order) -> bool:
        now = self.market.clock.now().timestamp()
        if order.good_until is None or now < order.good_until:
            return False
        self._cancel(order, "Cancelled")  # the DAY order's day ended
        return True

    def _at_the_open(self, order: Order) -> bool:
        """OPG: all or nothing at the opening price, once the open has come (even if the
        clock has since jumped past it); what the auction does not fill is cancelled."""
        opens = order.active_from
        if opens is None or self.market.clock.now().timestamp() < opens:
            return False
        auction = self.market.quote_at(order.instrument, datetime.fromtimestamp(opens, UTC))
        price = orders.fill_price(order, auction)
        if price is None:
            self._cancel(order, "Cancelled")
        else:
            self._execute(order, order.remaining, price)
        return True

    def _trigger(self, order: Order, quote: Quote) -> bool:
        before = order.status
        self._refresh_status(order, quote)
        if order.status == before:
            return False
        self._emit_status(order)
        return True

    def _cancel_ioc(self, order: Order) -> bool:
        if order.request.tif.upper() != "IOC":
            return False
        self._cancel(order, "Cancelled")
        return True

    def _execute(self, order: Order, qty: float, price: float) -> None:
        inst, req = order.instrument, order.request
        fee = self._fee(order, qty, price)
        side = "BOT" if orders.sign(req) > 0 else "SLD"
        realized = self.ledger.apply_fill(req.account, inst, side, qty, price, fee, inst.currency)
        cum = order.filled + qty
        order.avg_fill_price = (order.avg_fill_price * order.filled + price * qty) / cum
        order.filled, order.last_fill_price = cum, price
        order.commission = round((order.commission or 0.0) + fee, 2)
        order.commission_currency = inst.currency
        order.exec_count += 1
        now = self.market.clock.now()
        fill = Fill(
            exec_id=f"{self._exec_prefix}.{order.perm_id:08x}.{order.exec_count:02x}.01",
            order_key=order.key,
            perm_id=order.perm_id,
            instrument=inst,
            account=req.account,
            side=side,
            shares=qty,
            price=price,
            time=ib_time(now),
            cum_qty=cum,
            avg_price=order.avg_fill_price,
            order_ref=req.order_ref,
            commission=fee,
            commission_currency=inst.currency,
            realized_pnl=None if realized is None else round(realized, 2),
            liquidity=orders.liquidity(req),
            epoch=now.timestamp(),
        )
        self._state.fills.append(fill)
        self._spend_fill_budget()
        if order.remaining <= _EPSILON:
            self._finish(order, OrderStatus.FILLED, "Filled")
        self._emit_fill(order, fill)
        self._one_cancels_all(order, qty)

    def _spend_fill_budget(self) -> None:
        """Count one executed chunk against the fault's budget; freeze fills when it runs out.

        Freezing here, rather than in the fault, stops the very next chunk of this same
        ``process()`` pass too (``_step`` checks ``fills_frozen`` for every order).
        """
        if self.fill_budget is None:
            return
        self.fill_budget = max(0, self.fill_budget - 1)
        if self.fill_budget == 0:
            self.fills_frozen = True

    def _one_cancels_all(self, filler: Order, qty: float) -> None:
        """A fill cancels (ocaType 1) or reduces (2, 3, bracket siblings) the group's rest."""
        kind = links.oca_type(filler)
        for other in links.oca_others(self._state.orders, filler):
            total = (
                0.0 if kind == links.CANCEL_ON_FILL else links.reduced_quantity(filler, other, qty)
            )
            if total <= 0:
                self._cancel(other, "Cancelled")
            elif total != other.request.total_quantity:
                other.request = dataclasses.replace(other.request, total_quantity=total)
                if other.status != OrderStatus.API_PENDING:
                    self._emit_status(other)

    def _fee(self, order: Order, qty: float, price: float) -> float:
        inst, schedule = order.instrument, self.scenario.options.commissions
        usd = self.market.fx_rate(inst.currency, "USD")
        mult = inst.multiplier or 1.0
        before_notional = order.avg_fill_price * order.filled * mult
        after_notional = before_notional + price * qty * mult
        before = orders.order_commission(inst, schedule, order.filled, before_notional, usd)
        after = orders.order_commission(inst, schedule, order.filled + qty, after_notional, usd)
        return round(after - before, 2)
