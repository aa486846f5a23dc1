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

from ibsim import accounts, links, orders, pretrade, state, validity, whatif
from ibsim.ledger import Ledger
from ibsim.market import Market, ib_time
from ibsim.matching import Matcher
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
from ibsim.whatif import WhatIf

_EPSILON = 1e-9


class Broker(Matcher):
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
        self.fill_budget: int | None = None  # fill chunks left before fills freeze (None: no limit)
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
            self._transmit(order)
            return order

    def _new_order(self, req: OrderRequest) -> Order:
        inst = pretrade.instrument(self.market.catalog, req)
        req = pretrade.with_account(self.accounts, req)
        orders.validate(req, inst)
        links.check_parent(self._state.orders, req)
        if self._reject_reasons:
            raise OrderRejected(self._reject_reasons.pop(0), CODE_REJECTED)
        quote = self.market.quote(inst)
        pretrade.check_market_hours(self.market, self.scenario.options, req, inst)
        pretrade.check_not_expired(self.market, inst)
        pretrade.check_buying_power(self.ledger, req, inst, quote)
        now = self.market.clock.now()
        active_from, good_until = validity.window(self.market, req, inst, now)
        order = Order(
            request=req,
            instrument=inst,
            perm_id=self._state.next_perm_id,
            status=OrderStatus.API_PENDING,  # until transmitted (see _transmit)
            placed_time=ib_time(now),
            warning_text=pretrade.warning(self.market, self.scenario.options, req, inst),
            active_from=active_from,
            good_until=good_until,
        )
        self._state.next_perm_id += 1
        up = links.parent(self._state.orders, order)
        order.parent_perm_id = up.perm_id if up is not None else None
        self._state.orders[order.key] = order
        return order

    def what_if(self, req: OrderRequest) -> tuple[Order, WhatIf]:
        """The margin and commission ``req`` would cost; nothing is placed, no id is used.

        Raises:
            OrderRejected: the same static checks as a real placement (contract, account,
                order type, prices).
        """
        with self._lock:
            inst = pretrade.instrument(self.market.catalog, req)
            req = pretrade.with_account(self.accounts, req)
            orders.validate(req, inst)
            price = orders.estimate_price(req, self.market.quote(inst))
            answer = whatif.estimate(
                self.ledger, self.scenario.options.commissions, req, inst, price
            )
            warning = pretrade.warning(self.market, self.scenario.options, req, inst)
            order = Order(
                req, inst, perm_id=0, status=OrderStatus.PRE_SUBMITTED, warning_text=warning
            )
            return order, answer

    def _transmit(self, order: Order) -> None:
        """Send the order's whole chain to "IB" once one of it says transmit=True.

        IB: a bracket's parent and first child go with transmit=False, the last child with
        True, and the gateway then transmits all three, parent first.
        """
        if not order.request.transmit:
            return
        for member in links.chain(self._state.orders, order):
            if member.status == OrderStatus.API_PENDING:
                member.status = OrderStatus.SUBMITTED
                self._refresh_status(member, self.market.quote(member.instrument))
                self._emit_status(member)

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
        if _window_fields(req) != _window_fields(old):
            now = self.market.clock.now()
            window = validity.window(self.market, req, order.instrument, now)
            order.active_from, order.good_until = window
        order.request = req
        self._refresh_status(order, self.market.quote(order.instrument))
        self.save()
        if order.status == OrderStatus.API_PENDING:
            self._transmit(order)  # an untransmitted order is reported once transmitted
        else:
            self._emit_status(order)
        return order

    def _refresh_status(self, order: Order, quote: Quote) -> None:
        """PreSubmitted while held (market closed, stop not yet touched, parent not filled),
        else Submitted. That is what IB shows; stops only trigger while their market trades.
        """
        if order.status == OrderStatus.API_PENDING:
            return  # not transmitted: IB knows nothing of it yet
        now = self.market.clock.now().timestamp()
        early = order.active_from is not None and now < order.active_from  # goodAfterTime, OPG
        if early or links.waiting_for_parent(self._state.orders, order):
            order.status = OrderStatus.PRE_SUBMITTED
            return
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
            self._cancel(order, "Cancelled by Trader")
            if order.request.oca_group and order.filled <= _EPSILON:
                # IB: an OCA order cancelled before any execution cancels the rest of its group.
                for other in links.oca_others(self._state.orders, order):
                    self._cancel(other, "Cancelled by Trader")
            self.save()
            return order

    def _cancel(self, order: Order, text: str) -> None:
        """Cancel one order and, as IB does for brackets, its children."""
        self._finish(order, OrderStatus.CANCELLED, text)
        self._emit_status(order)
        for child in links.children(self._state.orders, order):
            if child.status not in TERMINAL_STATUSES:
                self._cancel(child, text)

    def _finish(self, order: Order, status: OrderStatus, text: str) -> None:
        order.status = status
        order.completed_status = text
        order.completed_time = ib_time(self.market.clock.now())

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
                and o.status != OrderStatus.API_PENDING  # never transmitted: not at IB
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


def _window_fields(req: OrderRequest) -> tuple[str, str, str, bool]:
    """What decides when an order may fill (a modify that changes them moves its window)."""
    return (req.tif.upper(), req.good_after_time, req.good_till_date, req.outside_rth)
