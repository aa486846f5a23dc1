"""The simulator: an asyncio TWS API server around one Broker.

Concurrency contract: everything runs on one event loop. The model (broker, market) is guarded
by ``Simulator.lock`` because tests may also reach it from their own thread; user code must not
block the loop. The broker is driven by a timer (``process_interval``) and right after each
placeOrder, so fills arrive asynchronously, as from a real gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
from pathlib import Path

from ibsim import scenario as scenario_mod
from ibsim.broker import Broker
from ibsim.faults import Faults
from ibsim.handlers import account as account_handlers
from ibsim.handlers import depth, history, mktdata
from ibsim.handlers import orders as order_handlers
from ibsim.market import Catalog, Clock, Market
from ibsim.messages.orders import commission_report, exec_details
from ibsim.model import BrokerEvents, Fill, Order
from ibsim.pacing import HistoricalPacing
from ibsim.scenario import Scenario
from ibsim.session import Session

log = logging.getLogger("ibsim.server")

CLIENT_ID_IN_USE = (
    326,
    "Unable to connect as the client id is already in use. Retry with a unique client id.",
)
TOO_MANY_CLIENTS = (502, "Couldn't connect to TWS. The maximum number of API clients is reached.")
STATE_FILE = "broker-state.json"
PNL_INTERVAL = 1.0  # seconds between reqPnL / reqPnLSingle updates


class Simulator:
    """One simulated gateway: listener, client sessions, broker timer, fault switches."""

    def __init__(
        self,
        scenario: str | Path | Scenario | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | Path | None = None,
        seed: int | None = None,
        *,
        clock: Clock | None = None,
        process_interval: float = 0.05,
        max_msg_rate: int = 50,
        max_clients: int = 32,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else scenario_mod.load(scenario)
        self.host, self.port = host, port
        self.clock = clock or Clock(self.scenario.clock_start)
        seed = self.scenario.seed if seed is None else seed
        self.market = Market(
            Catalog.builtin(extra_stocks=self.scenario.extra_stocks),
            self.clock,
            seed=seed,
            price_seeds=self.scenario.price_seeds,
        )
        self._tmp_dir = None if state_dir else tempfile.mkdtemp(prefix="ibsim-")
        self.state_path = Path(state_dir or self._tmp_dir) / STATE_FILE
        self.process_interval = process_interval
        self.max_msg_rate = max_msg_rate
        self.max_clients = max_clients
        self.lock = threading.RLock()
        self.faults = Faults(self)
        self.historical_pacing = HistoricalPacing()
        self.sessions: set[Session] = set()
        self.clients: dict[int, Session] = {}
        self.locked_ids: set[int] = set()
        self.broker = self._new_broker()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._timer: asyncio.Task | None = None
        self._dirty_accounts: set[str] = set()
        self._process_pending = False

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start accepting clients; ``port`` then holds the real port."""
        self.loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._timer = asyncio.create_task(self._run_timer())
        log.info("ibsim listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening, drop every client, save the broker's state."""
        if self._server is not None:
            self._server.close()
        self.drop_all()
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        if self._server is not None:
            await self._server.wait_closed()
        with self.lock:
            self.broker.save()
        if self._tmp_dir:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        await session.run()

    def restart(self, keep_state: bool = True) -> None:
        """The nightly gateway restart: drop everyone and reload the model.

        Args:
            keep_state: reload orders, executions and id sequences from the saved state
                (False starts the scenario afresh).
        """
        self.drop_all()
        with self.lock:
            self.broker.save()
            if not keep_state:
                self.state_path.unlink(missing_ok=True)
            self.broker = self._new_broker()
        self.locked_ids.clear()
        self.historical_pacing = HistoricalPacing()

    def drop_all(self) -> None:
        for session in list(self.sessions):
            session.abort()

    def connection_time(self) -> str:
        return f"{self.clock.now():%Y%m%d %H:%M:%S} UTC"

    # --- clients ----------------------------------------------------------------------

    def attach(self, session: Session, client_id: int) -> tuple[int, str] | None:
        """Register a client id; returns the refusal (code, text) or None."""
        if client_id in self.clients or client_id in self.locked_ids:
            return CLIENT_ID_IN_USE
        if len(self.clients) >= self.max_clients:
            return TOO_MANY_CLIENTS
        self.clients[client_id] = session
        return None

    def detach(self, session: Session) -> None:
        self.sessions.discard(session)
        if session.client_id is not None and self.clients.get(session.client_id) is session:
            del self.clients[session.client_id]
            self.faults.on_disconnect(session)

    # --- the broker -------------------------------------------------------------------

    def _new_broker(self) -> Broker:
        events = BrokerEvents(
            order_status=[self._on_order_status],
            fill=[self._on_fill],
            account_changed=[self._on_account_changed],
        )
        return Broker(self.market, self.scenario, events, state_path=self.state_path)

    async def _run_timer(self) -> None:
        while True:
            await asyncio.sleep(self.process_interval)
            try:
                self._tick()
            except Exception:
                log.exception("broker timer failed")

    def _tick(self) -> None:
        with self.lock:
            self.broker.process()
            if self.faults.connectivity_down:
                return
            now = self.loop.time() if self.loop else 0.0
            for session in list(self.sessions):
                mktdata.sample_due(session, now)
                depth.sample_due(session, now)
                history.update_bars(session)
                if session.subs.pnl and now >= session.subs.pnl_due:
                    session.subs.pnl_due = now + PNL_INTERVAL  # IB: P&L once a second
                    account_handlers.push_pnl(session)

    def process_soon(self) -> None:
        """Run the matcher right after the current request, from the loop (any thread)."""
        if self._process_pending or self.loop is None:
            return
        self._process_pending = True
        self.loop.call_soon_threadsafe(self._process_now)

    def _process_now(self) -> None:
        self._process_pending = False
        with self.lock:
            self.broker.process()

    def _owner(self, order: Order) -> Session | None:
        session = self.clients.get(order.request.client_id)
        return session if session is not None and session.logged_in else None

    def _on_order_status(self, order: Order) -> None:
        session = self._owner(order)
        if session is not None:
            order_handlers.push_order(session, order)

    def _on_fill(self, order: Order, fill: Fill) -> None:
        session = self._owner(order)
        if session is not None:
            session.send_order_event(exec_details(-1, fill, session.version))
            session.send_order_event(commission_report(fill))

    def _on_account_changed(self, account: str) -> None:
        # Coalesced: one push of fresh figures per loop iteration, however many fills.
        if self.loop is None:
            return  # not serving yet: nobody to tell
        first = not self._dirty_accounts
        self._dirty_accounts.add(account)
        if first:
            self.loop.call_soon_threadsafe(self._push_accounts)

    def _push_accounts(self) -> None:
        with self.lock:
            dirty, self._dirty_accounts = self._dirty_accounts, set()
            for session in list(self.sessions):
                if session.logged_in:
                    for account in sorted(dirty):
                        account_handlers.push_update(session, account)
