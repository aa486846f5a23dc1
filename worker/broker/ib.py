"""The ONLY module of the worker that imports the IB client library.

ib_async is preferred; ib_insync (same API, last released 2023) works as a fallback so users can
pin either. Everything leaving this module is plain data (dicts, lists, str, float), so no
other module depends on the library's types. All methods are coroutines for the session's
event-loop thread (``session.py``); they must never block that loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from worker.broker import codes, views
from worker.broker.pacing import PACER, Budget
from worker.errors import (
    ContractNotFound,
    DataRefused,
    GatewayNotReady,
    OrderNotTaken,
    OrderStateUnknown,
)

try:  # pragma: no cover - which branch runs depends on the virtualenv
    import ib_async as iblib
except ImportError:  # pragma: no cover
    import ib_insync as iblib  # type: ignore[no-redef]


LIBRARY = f"{iblib.__name__} {getattr(iblib, '__version__', '?')}"
LIVE = codes.LIVE_STATUSES
TERMINAL = codes.TERMINAL_STATUSES
POLL_SECONDS = 0.02
QUOTE_FIELDS = ("bid", "ask", "last", "close")
DUPLICATE_ID_TRIES = 14  # jumps 1..8192 ids past IB 103 answers before giving up
_MARKET_DATA_ANSWERS = {codes.Kind.DELAYED_INSTEAD, codes.Kind.NO_MARKET_DATA}
CONTRACT_FIELDS = {
    "con_id": "conId",
    "symbol": "symbol",
    "sec_type": "secType",
    "exchange": "exchange",
    "primary_exchange": "primaryExchange",
    "currency": "currency",
    "last_trade_date": "lastTradeDateOrContractMonth",
    "multiplier": "multiplier",
    "local_symbol": "localSymbol",
}


def _to_contract(spec: dict[str, Any]) -> Any:
    """Our plain contract spec (see CONTRACT_FIELDS; other keys are ours) as a Contract."""
    fields = {CONTRACT_FIELDS[k]: v for k, v in spec.items() if k in CONTRACT_FIELDS}
    return iblib.Contract(**{k: v for k, v in fields.items() if v not in (None, "")})


def _historical_error(code: int, message: str) -> Exception:
    """What IB refusing a reqHistoricalData means for the run: pacing stops it until its next
    run (pacing.Budget), a lost connection is retried, anything else is for good. 162 is both
    the pacing violation and the data service refusing the request (no data, no permission,
    a bar size it does not serve); only its text tells them apart."""
    text = f"IB {code}: {message}"
    if code == 162 and "pacing" not in message.lower():
        return DataRefused(text)
    if codes.classify(code) is codes.Kind.PACING:
        return Budget(text)
    if codes.is_retryable(code):
        return GatewayNotReady(text)
    return DataRefused(text)


def _first(answers: list[tuple[int, str]], kind: codes.Kind) -> dict[str, Any] | None:
    """IB's first answer of ``kind`` to a market data request, as ``{"code", "message"}``."""
    for code, message in answers:
        if codes.classify(code) is kind:
            return {"code": code, "message": message}
    return None


class Gateway:
    """One IB client connection and the read/trade operations intents need.

    Keyed library requests (account updates for one account, open orders, executions) are
    serialized with one asyncio lock per key: concurrent identical keyed requests hang the
    library, because its futures are keyed by request.
    """

    def __init__(self, order_id_floor: int = 0) -> None:
        self.ib = iblib.IB()
        self.ib.RaiseRequestErrors = True  # an error answer raises instead of an empty list
        self._locks: dict[str, asyncio.Lock] = {}
        self._updates_account: str | None = None  # the one account reqAccountUpdates follows
        self.order_id_floor = order_id_floor  # every order id used so far is below this

    # -- connection ------------------------------------------------------------------------
    async def connect(self, host: str, port: int, client_id: int, wait: float) -> None:
        """Connect with full sync; raises on timeout, refusal or a sync request failing."""
        kwargs: dict[str, Any] = {"clientId": client_id, "timeout": wait}
        if "raiseSyncErrors" in inspect.signature(self.ib.connectAsync).parameters:
            kwargs["raiseSyncErrors"] = True  # ib_async: a missing end marker is a failure
        await self.ib.connectAsync(host, port, **kwargs)
        accounts = self.accounts()
        # With one account the library's sync subscribed reqAccountUpdates to it already; with
        # several it only asked reqAccountUpdatesMulti, which carries values but no portfolio.
        self._updates_account = accounts[0] if len(accounts) == 1 else None

    def disconnect(self) -> None:
        self.ib.disconnect()

    def is_connected(self) -> bool:
        return self.ib.isConnected()

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        self.ib.disconnectedEvent += callback

    def on_error(self, callback: Callable[[int, int, str], None]) -> None:
        """``callback(req_id, code, message)`` for every error/notice the gateway sends."""
        self.ib.errorEvent += lambda req_id, code, msg, *_: callback(req_id, code, msg)

    def accounts(self) -> list[str]:
        return list(self.ib.managedAccounts())

    def server_version(self) -> int:
        return self.ib.client.serverVersion() if self.is_connected() else 0

    # -- reads -----------------------------------------------------------------------------
    async def account_values(self, account: str) -> list[dict[str, str]]:
        """Account values of one account, kept current by the library's subscriptions."""
        if not self.ib.accountValues(account):
            await self._follow(account)
        return [
            {"tag": v.tag, "value": v.value, "currency": v.currency}
            for v in self.ib.accountValues(account)
        ]

    async def portfolio(self, account: str) -> list[dict[str, Any]]:
        """The portfolio of one account (reqAccountUpdates follows one account at a time)."""
        await self._follow(account)
        return [
            {
                **views.contract(p.contract),
                "position": p.position,
                "market_price": views.num(p.marketPrice),
                "market_value": views.num(p.marketValue),
                "average_cost": views.num(p.averageCost),
                "unrealized_pnl": views.num(p.unrealizedPNL),
                "realized_pnl": views.num(p.realizedPNL),
            }
            for p in self.ib.portfolio(account)
        ]

    async def open_orders(self, account: str) -> list[dict[str, Any]]:
        """All clients' open orders (reqAllOpenOrders), not just this client's."""
        async with self._lock("open_orders"):
            trades = await self.ib.reqAllOpenOrdersAsync()
        return [views.trade(t) for t in trades if not account or t.order.account == account]

    async def executions(self, account: str) -> list[dict[str, Any]]:
        """Today's executions, asked again each time: fills made while we were disconnected
        are only visible this way (peer-systems.md)."""
        async with self._lock("executions"):
            fills = await self.ib.reqExecutionsAsync(iblib.ExecutionFilter(acctCode=account))
        # The library answers an execution it saw before with a fresh Fill whose commission
        # report is empty; the report it received is on its own copy, keyed by execId.
        seen = {f.execution.execId: f for f in self.ib.fills()}
        return [views.fill(seen.get(f.execution.execId, f)) for f in fills]

    async def now(self) -> datetime:
        """The gateway's clock (reqCurrentTime): market hours are judged by it."""
        return await self.ib.reqCurrentTimeAsync()

    async def account_view(self, account: str) -> dict[str, Any]:
        """Base currency, NetLiquidation, GrossPositionValue, FX rates and positions."""
        values = await self.account_values(account)
        base = next((v["currency"] for v in values if v["tag"] == "NetLiquidation"), "")
        figures = {v["tag"]: v["value"] for v in values if v["currency"] == base}
        fx = {
            v["currency"]: float(v["value"])
            for v in values
            if v["tag"] == "ExchangeRate" and v["currency"] not in ("", "BASE")
        }
        positions = {p.contract.conId: float(p.position) for p in self.ib.positions(account)}
        return {
            "base_currency": base,
            "net_liquidation": float(figures.get("NetLiquidation") or 0.0),
            "gross_position_value": float(figures.get("GrossPositionValue") or 0.0),
            "fx": fx,
            "positions": positions,
        }

    async def quote(self, contract: dict[str, Any], data_type: int, wait: float) -> dict[str, Any]:
        """A fresh quote at market data type ``data_type`` (1-4), asked again at the delayed
        type when IB answers that live data is not subscribed (``codes.Kind.DELAYED_INSTEAD``).

        Only IB's answer triggers the fallback: an empty quote is just empty (a closed market).
        Says ``market_data_type`` (the type that produced it), ``requested_market_data_type``,
        ``fallback``: IB's ``{"code", "message"}`` that caused the fallback, or None, and
        ``refused``: IB's answer when no data will come at all (``codes.Kind.NO_MARKET_DATA``).
        """
        if not contract.get("con_id"):  # market data is keyed by conId in the library
            contract = await self.contract(contract)
        delayed = codes.DELAYED_TYPE.get(data_type)
        quote, answers = await self._quote(contract, data_type, wait, stop_on_refusal=bool(delayed))
        used, fallback = data_type, None
        refusal = _first(answers, codes.Kind.DELAYED_INSTEAD)
        if refusal is not None and delayed is not None:
            used, fallback = delayed, refusal
            quote, answers = await self._quote(contract, delayed, wait, stop_on_refusal=False)
        return {
            **quote,
            "market_data_type": used,
            "requested_market_data_type": data_type,
            "fallback": fallback,
            "refused": _first(answers, codes.Kind.NO_MARKET_DATA),
        }

    # -- orders (only the journal, worker/journal.py, calls these) --------------------------
    async def contract(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The one contract ``spec`` names, qualified (conId, multiplier, ...).

        Raises:
            ContractNotFound: IB knows no such contract (200), or the spec is ambiguous.
        """
        try:
            details = await self.ib.reqContractDetailsAsync(_to_contract(spec))
        except iblib.RequestError as exc:
            raise ContractNotFound(f"no contract for {spec}: IB {exc.code} {exc.message}") from None
        if len(details) != 1:
            raise ContractNotFound(f"{len(details)} contracts match {spec}; be more specific")
        found = details[0]
        return {
            **views.contract(found.contract),
            "min_tick": views.num(found.minTick),
            "size_increment": views.num(getattr(found, "sizeIncrement", None)),
        }

    async def daily_bars(self, spec: dict[str, Any], count: int) -> list[dict[str, Any]]:
        """The last ``count`` daily TRADES bars (regular hours), oldest first."""
        bars = await self._historical(spec, "", f"{count} D", "1 day", "TRADES", True)
        return [views.bar(b) for b in bars]

    async def bars(
        self, spec: dict[str, Any], duration: str, bar_size: str, what_to_show: str
    ) -> list[dict[str, Any]]:
        """Historical bars ending now, each with its UTC start time, oldest first."""
        bars = await self._historical(spec, "", duration, bar_size, what_to_show, True)
        return [views.bar_at(b) for b in bars]

    async def place(
        self,
        contract: dict[str, Any],
        order: dict[str, Any],
        guard: Callable[[], None],
        ack_seconds: float,
    ) -> dict[str, Any]:
        """Send one new order and wait for the gateway's acknowledgement.

        ``guard()`` runs on the loop right before the order leaves (it raises when the run may
        no longer send). A duplicate id (103) means the order was not taken: the next try jumps
        further ahead each time (1, 2, 4, ... ids), because after a gateway restart that rolled
        nextValidId back, a run of ids used by an earlier process may lie ahead, unknown to this
        one. No acknowledgement in time raises OrderStateUnknown: the order may exist; 103 to
        every id tried raises OrderNotTaken: it does not.
        """
        for jump in (2**n for n in range(DUPLICATE_ID_TRIES)):
            guard()
            trade = self.ib.placeOrder(_to_contract(contract), self._new_order(order))
            self.order_id_floor = max(self.order_id_floor, trade.order.orderId + jump)
            state = await self._acknowledged(trade, ack_seconds)
            if state.get("error_code") != 103:
                return state
        # Not a rejection of the order itself: the leg stays planned and a later attempt
        # (a new session, ids re-learned) sends it.
        raise OrderNotTaken(f"IB answered 103 (duplicate order id) to {DUPLICATE_ID_TRIES} ids")

    async def find(self, order_ref: str, wait: float) -> dict[str, list[dict[str, Any]]]:
        """Every trace of ``order_ref`` at the broker: all clients' open orders, completed
        orders and today's executions. Each answer must end with its end marker within
        ``wait`` seconds, else OrderStateUnknown: "no answer" is never "not there"."""
        completed = functools.partial(self.ib.reqCompletedOrdersAsync, False)  # not API-only
        open_, done, fills = await self._complete(
            (self._locked("open_orders", self.ib.reqAllOpenOrdersAsync), "open orders"),
            (self._locked("completed", completed), "completed orders"),
            (self._locked("executions", self.ib.reqExecutionsAsync), "executions"),
            wait=wait,
        )
        for t in [*open_, *done]:
            self.order_id_floor = max(self.order_id_floor, t.order.orderId + 1)
        return {
            "open": [views.trade(t) for t in open_ if t.order.orderRef == order_ref],
            "completed": [views.trade(t) for t in done if t.order.orderRef == order_ref],
            "fills": [views.fill(f) for f in fills if f.execution.orderRef == order_ref],
        }

    async def settle(self, legs: list[tuple[str, int]], wait: float) -> list[dict[str, Any]]:
        """States of our orders, by (orderRef, permId), once all are terminal or after
        ``wait``. PermIds and orderRefs survive gateway restarts; order ids do not, and an
        order that ended while we were away is known only as a completed order."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            self._still_connected()
            trades = [self._trade_for(ref, perm_id) for ref, perm_id in legs]
            done = all(t is not None and t.orderStatus.status in TERMINAL for t in trades)
            if done or asyncio.get_running_loop().time() >= deadline:
                return [self._state_of(t) if t else {} for t in trades]
            await asyncio.sleep(POLL_SECONDS)

    async def cancel(self, targets: list[tuple[str, int]], wait: float) -> list[dict[str, Any]]:
        """Cancel our orders (by orderRef, permId): every cancel is sent first, then all are
        awaited, so many cancellations take one wait. A state that is still not terminal
        after ``wait`` is returned as is; the caller treats it as unknown."""
        for order_ref, perm_id in targets:
            trade = self._trade_for(order_ref, perm_id)
            if trade is not None and trade.orderStatus.status not in TERMINAL:
                self.ib.cancelOrder(trade.order)
        return await self.settle(targets, wait)

    async def positions(self, account: str) -> list[dict[str, Any]]:
        """Positions asked afresh (reqPositions, complete with its end marker)."""
        async with self._lock("positions"):
            rows = await self.ib.reqPositionsAsync()
        return [
            {
                **views.contract(p.contract),
                "account": p.account,
                "position": float(p.position),
                "average_cost": views.num(p.avgCost),
            }
            for p in rows
            if p.position and (not account or p.account == account)
        ]

    # -- helpers ---------------------------------------------------------------------------
    async def _historical(self, spec: dict[str, Any], *request: Any) -> list[Any]:
        """reqHistoricalData under the worker's own pacing; raises pacing.Budget when spent,
        DataRefused when IB refuses it for good (see _historical_error)."""
        contract = str(spec.get("con_id") or f"{spec['symbol']}:{spec.get('sec_type')}")
        identity = "|".join([contract, *map(str, request)])
        wait = PACER.admit(contract, identity)
        if wait > 0:
            await asyncio.sleep(wait)
        PACER.sent(contract, identity)
        end, duration, bar_size, what_to_show, use_rth = request
        try:
            return await self.ib.reqHistoricalDataAsync(
                _to_contract(spec),
                endDateTime=end,
                durationStr=duration,
                barSizeSetting=bar_size,
                whatToShow=what_to_show,
                useRTH=use_rth,
                formatDate=2,  # UTC
            )
        except iblib.RequestError as exc:
            raise _historical_error(exc.code, exc.message) from None

    async def _quote(
        self, spec: dict[str, Any], data_type: int, wait: float, stop_on_refusal: bool
    ) -> tuple[dict[str, Any], list[tuple[int, str]]]:
        """One reqMktData at ``data_type``, polled until two-sided, IB says no data will come
        (``codes.Kind.NO_MARKET_DATA``) or ``wait`` has passed; with ``stop_on_refusal``, also
        until IB refuses live data for it. Returns the prices and IB's answers to the request.

        Not stopping on a refusal matters for the delayed types: IB sends 10167 to announce the
        delayed data it then streams on the same request.
        """
        answers: dict[int, list[tuple[int, str]]] = {}
        stops = {codes.Kind.NO_MARKET_DATA}
        if stop_on_refusal:
            stops.add(codes.Kind.DELAYED_INSTEAD)

        def on_error(req_id: int, code: int, message: str, *_: Any) -> None:
            if codes.classify(code) in _MARKET_DATA_ANSWERS:
                answers.setdefault(req_id, []).append((code, message))

        self.ib.errorEvent += on_error  # from before the request: no answer slips past
        try:
            self.ib.reqMarketDataType(data_type)
            contract = _to_contract(spec)
            ticker = self.ib.reqMktData(contract, "", False, False)
            self._forget_earlier(ticker)
            req_id = self._ticker_req_id(ticker)
            try:
                await self._await_quote(
                    ticker,
                    wait,
                    lambda: any(codes.classify(c) in stops for c, _ in answers.get(req_id, ())),
                )
            finally:
                self.ib.cancelMktData(contract)
        finally:
            self.ib.errorEvent -= on_error
        prices = {k: views.num(getattr(ticker, k)) for k in QUOTE_FIELDS}
        return prices, answers.get(req_id, [])

    def _ticker_req_id(self, ticker: Any) -> int:
        """The reqId reqMktData gave ``ticker`` (IB's errors name it). Both libraries keep it
        in ``wrapper.ticker2ReqId`` and reqMktData returns the ticker alone."""
        return int(self.ib.wrapper.ticker2ReqId["mktData"].get(ticker, 0))

    @staticmethod
    def _forget_earlier(ticker: Any) -> None:
        """ib_async hands back the same Ticker for the same contract, still holding what an
        earlier request got: unless cleared, those prices would pass for this request's answer
        (and hide IB refusing it). No await came between: nothing of this request is lost."""
        for name in QUOTE_FIELDS:
            setattr(ticker, name, math.nan)

    @staticmethod
    async def _await_quote(ticker: Any, wait: float, refused: Callable[[], bool]) -> None:
        """Until ``ticker`` is two-sided, ``refused()`` or ``wait`` seconds have passed."""
        deadline = asyncio.get_running_loop().time() + wait
        while asyncio.get_running_loop().time() < deadline and not refused():
            if views.num(ticker.bid) and views.num(ticker.ask):
                return
            await asyncio.sleep(POLL_SECONDS)

    def _new_order(self, spec: dict[str, Any]) -> Any:
        order = iblib.Order(
            orderId=self._next_order_id(),
            action=spec["action"],
            totalQuantity=spec["quantity"],
            orderType=spec["order_type"],
            tif=spec.get("tif") or "DAY",
            orderRef=spec["order_ref"],
            account=spec.get("account") or "",
        )
        if spec.get("limit_price") is not None:
            order.lmtPrice = spec["limit_price"]
        if spec.get("algo"):  # e.g. IB's Adaptive algo with its priority
            order.algoStrategy = spec["algo"]["strategy"]
            order.algoParams = [iblib.TagValue(k, v) for k, v in spec["algo"]["params"].items()]
        return order

    def _next_order_id(self) -> int:
        """Above the gateway's nextValidId, every order this client has seen and every id
        used before a reconnect (nextValidId has been seen to move backwards)."""
        me = self.ib.client.clientId
        seen = [t.order.orderId for t in self.ib.trades() if t.order.clientId == me]
        seen += [f.execution.orderId for f in self.ib.fills() if f.execution.clientId == me]
        order_id = max(self.ib.client.getReqId(), self.order_id_floor, max(seen, default=0) + 1)
        self.ib.client.updateReqId(order_id + 1)
        return order_id

    async def _acknowledged(self, trade: Any, wait: float) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + wait
        while asyncio.get_running_loop().time() < deadline:
            self._still_connected()
            rejected = views.rejection(trade)
            if rejected and not trade.order.permId:
                return {**self._state_of(trade), "error_code": rejected[0], "reason": rejected[1]}
            if trade.order.permId or trade.orderStatus.status in LIVE:
                return self._state_of(trade)
            await asyncio.sleep(POLL_SECONDS)
        raise OrderStateUnknown(
            f"order {trade.order.orderId} was sent but not acknowledged within {wait:.0f}s"
        )

    def _still_connected(self) -> None:
        """A dropped connection clears the library's order book: never read that as news."""
        if not self.is_connected():
            raise ConnectionError("the IB connection dropped while waiting on an order")

    def _trade_for(self, order_ref: str, perm_id: int) -> Any:
        """The newest view of an order: the one with our permId, else the ref's only one."""
        trades = [t for t in self.ib.trades() if t.order.orderRef == order_ref]
        exact = [t for t in trades if perm_id and t.order.permId == perm_id]
        return (exact or trades or [None])[-1]

    def _locked(self, key: str, request: Callable[[], Any]) -> Callable[[], Any]:
        async def run() -> Any:
            async with self._lock(key):
                return await request()

        return run

    @staticmethod
    async def _complete(*requests: tuple[Callable[[], Any], str], wait: float) -> list[Any]:
        async def one(request: Callable[[], Any], what: str) -> Any:
            try:
                return await asyncio.wait_for(request(), wait)
            except TimeoutError:
                raise OrderStateUnknown(f"{what} did not end within {wait:.0f}s") from None

        return [await one(request, what) for request, what in requests]

    def _state_of(self, t: Any) -> dict[str, Any]:
        return views.order_state(t, self.ib.fills())

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _follow(self, account: str) -> None:
        """Point reqAccountUpdates at ``account``; IB follows one account per client, so
        switching replaces the previous subscription (and refreshes this one's portfolio)."""
        async with self._lock("account_updates"):
            if self._updates_account != account:
                await self.ib.reqAccountUpdatesAsync(account)
                self._updates_account = account
