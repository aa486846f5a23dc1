"""The paper broker: orders, fills, the ledger and persisted order-id sequences.

Concurrency contract: every public method takes one re-entrant lock, so the server's event-loop
thread (placeOrder, the process() timer) and a test's thread (assertions, fault hooks) may call
in at any time. Events (:class:`~ibsim.model.BrokerEvents`) are called synchronously while that
lock is held: sinks must not block, and may call back into the broker.

The broker runs on whether or not any client is connected: ``process()`` keeps filling working
orders, so a client that reconnects learns about fills through reqExecutions / open orders.
"""

from __future__ import annotations

import dataclasses
import threading
import zlib
from pathlib import Path

from ibsim import accounts, orders, pretrade, state
from ibsim.ledger import Ledger
from ibsim.market import Market, ib_time
from ibsim.model import (
    TERMINAL_STATUSES,
    AccountValue,
    BrokerEvents,
    ExecutionFilter,
    Fill,
    NotCancellable,
    Order,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    PortfolioItem,
    Position,
    Quote,
)
from ibsim.orders import CODE_DUPLICATE_ID, CODE_REJECTED
from ibsim.scenario import Scenario

_EPSILON = 1e-9
_WORKING = frozenset({OrderStatus.PRE_SUBMITTED, OrderStatus.SUBMITTED})


class Broker:
    """Orders, executions and accounts for one simulated gateway login."""

    def __init__(
        self,
        market: Market,
        scenario: Scenario,
        events: BrokerEvents,
        *,
        state_path: Path | None = None,
    ) -> None:
        self.market = market
        self.scenario = scenario
        self.events = events
        self.state_path = Path(state_path) if state_path else None
        self.accounts: list[str] = [a.id for a in scenario.accounts]
        self.fills_frozen = False
        self._lock = threading.RLock()
        self._reject_reasons: list[str] = []
        self._exec_prefix = f"{zlib.crc32(f'ibsim:{scenario.seed}'.encode()):08x}"
        self.ledger = Ledger(market, scenario)
        loaded = state.read(self.state_path, market.catalog) if self.state_path else None
        self._state = loaded or state.BrokerState()
        if loaded:
            self.ledger.load_json(loaded.ledger)

    # --- order ids ----------------------------------------------------------------------
    def _ids(self, client_id: int) -> state.IdBook:
        return self._state.ids.setdefault(client_id, state.IdBook())

    def next_valid_id(self, client_id: int) -> int:
        """The id nextValidId reports to ``client_id`` (persisted per clientId)."""
        with self._lock:
            return self._ids(client_id).next_id

    def reserve_ids(self, client_id: int, n: int) -> int:
        """reqIds: like IB, answers the next valid id (``n`` is advisory and ignored)."""
        del n  # IB ignores numIds too; the client counts up from the answer itself
        return self.next_valid_id(client_id)

    def roll_back_ids(self, client_id: int, by: int) -> None:
        """Fault hook: move nextValidId backwards (ids already used stay refused with 103)."""
        with self._lock:
            book = self._ids(client_id)
            book.next_id = max(1, book.next_id - by)
            self.save()

    def _claim_id(self, client_id: int, order_id: int) -> None:
        book = self._ids(client_id)
        book.used.add(order_id)
        book.next_id = max(book.next_id, order_id + 1)

    # --- placing ------------------------------------------------------------------------
    def place(self, req: OrderRequest) -> Order:
        """Place a new order or modify a working one (same client_id and order_id).

        Raises:
            OrderRejected: reason and IB code (103 duplicate id, 105 modify mismatch, 200 no
                security definition, 201 rejected, 321 validation, 436 no account).
        """
        with self._lock:
            existing = self._state.orders.get((req.client_id, req.order_id))
            if existing is not None and existing.status not in TERMINAL_STATUSES:
                return self._modify(existing, req)
            if existing is not None or req.order_id in self._ids(req.client_id).used:
                raise OrderRejected(f"Duplicate order id {req.order_id}", CODE_DUPLICATE_ID)
            if req.order_id <= 0:
                raise OrderRejected(f"Invalid order id {req.order_id}", CODE_DUPLICATE_ID)
            self._claim_id(req.client_id, req.order_id)  # IB burns the id even on rejection
            try:
                order = self._new_order(req)
            finally:
                self.save()
            self._emit_status(order)
            return order

    def _new_order(self, req: OrderRequest) -> Order:
        inst = pretrade.instrument(self.market.catalog, req)
        req = pretrade.with_account(self.accounts, req)
        orders.validate(req, inst)
        if self._reject_reasons:
            raise OrderRejected(self._reject_reasons.pop(0), CODE_REJECTED)
        quote = self.market.quote(inst)
        pretrade.check_market_hours(self.market, self.scenario.options, req, inst)
        pretrade.check_buying_power(self.ledger, req, inst, quote)
        now = self.market.clock.now()
        order = Order(
            request=req,
            instrument=inst,
            perm_id=self._state.next_perm_id,
            status=OrderStatus.SUBMITTED,
            placed_time=ib_time(now),
            warning_text=pretrade.warning(self.market, self.scenario.options, req, inst),
        )
        self._state.next_perm_id += 1
        if req.tif.upper() == "DAY":
            order.good_until = self.market.day_order_expiry(inst, now).timestamp()
        self._refresh_status(order, quote)
        self._state.orders[order.key] = order
        return order

    def _modify(self, order: Order, req: OrderRequest) -> Order:
        old = order.request
        same_contract = (
            pretrade.instrument(self.market.catalog, req).con_id == order.instrument.con_id
        )
        if not same_contract or req.action.upper() != old.action.upper():
            raise OrderRejected(
                "Order being modified does not match original order", orders.CODE_MODIFY_MISMATCH
            )
        req = dataclasses.replace(req, account=req.account or old.account)
        orders.validate(req, order.instrument)
        if req.total_quantity < order.filled - _EPSILON:
            raise OrderRejected(
                "Order rejected - reason: quantity is below the filled quantity", CODE_REJECTED
            )
        order.request = req
        if req.tif.upper() != old.tif.upper():
            placed = self.market.clock.now()
            day_end = self.market.day_order_expiry(order.instrument, placed).timestamp()
            order.good_until = day_end if req.tif.upper() == "DAY" else None
        self._refresh_status(order, self.market.quote(order.instrument))
        self.save()
        self._emit_status(order)
        return order

    def _refresh_status(self, order: Order, quote: Quote) -> None:
        """PreSubmitted while held (market closed, stop not yet touched), else Submitted.

        That is what IB shows; stops only trigger while their market trades.
        """
        is_open = self.market.is_open(order.instrument, outside_rth=order.request.outside_rth)
        is_stop = orders.normalise_type(order.request.order_type) in orders.STOP_TYPES
        if is_open and is_stop and orders.stop_touched(order.request, quote):
            order.triggered = True
        held = not is_open or (is_stop and not order.triggered)
        order.status = OrderStatus.PRE_SUBMITTED if held else OrderStatus.SUBMITTED

    # --- cancelling ---------------------------------------------------------------------
    def cancel(self, client_id: int, order_id: int) -> Order:
        """Cancel a working order.

        Raises:
            NotCancellable: unknown or already terminal (IB error 10148).
        """
        with self._lock:
            order = self._state.orders.get((client_id, order_id))
            if order is None or order.status in TERMINAL_STATUSES:
                state_text = order.status.value if order else "unknown"
                raise NotCancellable(
                    f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                    f"state: {state_text}."
                )
            self._finish(order, OrderStatus.CANCELLED, "Cancelled by Trader")
            self.save()
            self._emit_status(order)
            return order

    def _finish(self, order: Order, status: OrderStatus, text: str) -> None:
        order.status = status
        order.completed_status = text
        order.completed_time = ib_time(self.market.clock.now())

    # --- matching -----------------------------------------------------------------------
    def process(self) -> None:
        """Expire, trigger and fill working orders against the current quotes.

        At most one partial chunk (``partial_fill_size`` of the order's security type) fills
        per order per call; an IOC order then cancels whatever is left.
        """
        with self._lock:
            changed = False
            for order in [o for o in self._state.orders.values() if o.status in _WORKING]:
                changed = self._step(order) or changed
            if changed:
                self.save()

    def _step(self, order: Order) -> bool:
        """Advance one working order; True when anything about it changed."""
        if self._expire(order):
            return True
        if self.fills_frozen:
            return False
        quote = self.market.quote(order.instrument)
        changed = self._trigger(order, quote)
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
        self._finish(order, OrderStatus.CANCELLED, "Cancelled")  # the DAY order's day ended
        self._emit_status(order)
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
        self._finish(order, OrderStatus.CANCELLED, "Cancelled")
        self._emit_status(order)
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
        if order.remaining <= _EPSILON:
            self._finish(order, OrderStatus.FILLED, "Filled")
        self._emit_fill(order, fill)

    def _fee(self, order: Order, qty: float, price: float) -> float:
        inst, schedule = order.instrument, self.scenario.options.commissions
        usd = self.market.fx_rate(inst.currency, "USD")
        mult = inst.multiplier or 1.0
        before_notional = order.avg_fill_price * order.filled * mult
        after_notional = before_notional + price * qty * mult
        before = orders.order_commission(inst, schedule, order.filled, before_notional, usd)
        after = orders.order_commission(inst, schedule, order.filled + qty, after_notional, usd)
        return round(after - before, 2)

    # --- events -------------------------------------------------------------------------
    def _emit_status(self, order: Order) -> None:
        for sink in list(self.events.order_status):
            sink(order)

    def _emit_fill(self, order: Order, fill: Fill) -> None:
        for sink in list(self.events.fill):
            sink(order, fill)
        self._emit_status(order)
        for sink in list(self.events.account_changed):
            sink(fill.account)

    # --- queries ------------------------------------------------------------------------
    def open_orders(self, client_id: int | None = None) -> list[Order]:
        """Working orders, oldest first; ``None`` = every client's."""
        with self._lock:
            return [
                o
                for o in self._state.orders.values()
                if o.status not in TERMINAL_STATUSES
                and (client_id is None or o.request.client_id == client_id)
            ]

    def completed_orders(self) -> list[Order]:
        """Filled and cancelled orders, oldest first."""
        with self._lock:
            return [o for o in self._state.orders.values() if o.status in TERMINAL_STATUSES]

    def order(self, client_id: int, order_id: int) -> Order | None:
        """One order by key, or None."""
        with self._lock:
            return self._state.orders.get((client_id, order_id))

    def executions(self, flt: ExecutionFilter) -> list[Fill]:
        """Executions matching a reqExecutions filter, oldest first."""
        with self._lock:
            since = orders.filter_time(flt.time)
            return [f for f in self._state.fills if orders.fill_matches(f, flt, since)]

    def positions(self) -> list[Position]:
        """Every non-zero position of every account."""
        with self._lock:
            return self.ledger.positions()

    def portfolio(self, account: str) -> list[PortfolioItem]:
        """reqAccountUpdates portfolio rows for one account."""
        with self._lock:
            return self.ledger.portfolio(account) if account in self.accounts else []

    def account_values(self, account: str) -> list[AccountValue]:
        """The reqAccountUpdates value set for one account (see ibsim.accounts)."""
        with self._lock:
            if account not in self.accounts:
                return []
            return accounts.account_values(self.ledger.valuation(account))

    def account_summary(self, account: str, tags: list[str]) -> list[AccountValue]:
        """reqAccountSummary rows for one account."""
        with self._lock:
            if account not in self.accounts:
                return []
            return accounts.account_summary(self.ledger.valuation(account), tags)

    # --- persistence and faults -----------------------------------------------------------
    def save(self) -> None:
        """Write the state file now (done after every change; a no-op without state_path)."""
        with self._lock:
            if self.state_path is None:
                return
            self._state.ledger = self.ledger.to_json()
            state.write_atomic(self.state_path, state.dump(self._state))

    def reject_next(self, reason: str = "Order rejected - reason: simulated rejection") -> None:
        """Fault hook: the next new order is rejected with error 201 and ``reason``."""
        with self._lock:
            self._reject_reasons.append(reason)
