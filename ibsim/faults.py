"""Fault injection: the failures users of IB gateways hit, on demand.

Every method runs on the simulator's event loop (``run_in_thread`` hands tests a proxy that
hops there). Modes, each with a test showing what the client library sees:

- ``drop_all``: every API connection is cut (gateway crash, network loss).
- ``connectivity_lost`` / ``connectivity_restored``: errors 1100 then 1101 (data lost:
  market-data subscriptions are gone) or 1102 (data kept), as when IB's servers drop away.
- ``withhold_end`` / ``delay_end`` / ``release_ends``: end markers (positionEnd, openOrderEnd,
  execDetailsEnd, completedOrdersEnd, ...) that never come or come late.
- ``reject_next``: the broker rejects the next order (error 201 with the reason).
- ``drop_after_next_place``: the next placeOrder (from any client) is accepted by the broker
  as usual, but every API connection is cut before the placing client hears anything about it
  (no openOrder, orderStatus or error). One-shot.
- ``delay_order_acks``: openOrder / orderStatus / errors answering placeOrder and cancelOrder
  reach the client only after some seconds of real time (the broker acts at once); later
  events of that client's orders queue behind them. Cleared by ``clear``.
- ``freeze_fills`` / ``unfreeze_fills``: nothing fills until released.
- ``freeze_fills_after``: at most N more fill chunks execute (counted across all orders; with
  ``partial_fill_size`` one chunk per order per matching pass), then fills freeze as with
  ``freeze_fills``, so orders stay deterministically partly filled until ``unfreeze_fills``
  or ``clear``.
- ``restart``: the nightly gateway restart, keeping orders, executions and id sequences.
- ``restart_with_id_rollback``: a restart after which nextValidId moved backwards.
- ``lock_client_id`` / ``leave_client_id_locked``: a clientId answered with 326 until restart.
- ``set_not_logged_in``: the port accepts and handshakes, but no accounts, no nextValidId.
- ``fill_while_disconnected``: working orders fill only once their client has gone away, so
  the fills are visible afterwards only through reqExecutions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ibsim.server import Simulator
    from ibsim.session import Session

END_MARKERS = frozenset(
    {
        "positionEnd",
        "openOrderEnd",
        "execDetailsEnd",
        "completedOrdersEnd",
        "accountDownloadEnd",
        "accountUpdateMultiEnd",
        "accountSummaryEnd",
    }
)

LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")
_RESTORED = "Connectivity between IB and Trader Workstation has been restored"
RESTORED = {
    True: (1101, f"{_RESTORED} - data lost."),
    False: (1102, f"{_RESTORED} - data maintained."),
}


class Faults:
    """The fault switches of one simulator (see the module docstring)."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self._ends: dict[str, tuple[str, float]] = {}
        self.not_logged_in = False
        self.connectivity_down = False
        self.zombie_ids: set[int] = set()
        self.fill_on_disconnect = False
        self.drop_on_place = False
        self.order_ack_delay = 0.0

    # --- end markers ----------------------------------------------------------------------

    def withhold_end(self, marker: str) -> None:
        """Never send ``marker`` (until :meth:`release_ends`)."""
        self._ends[_marker(marker)] = ("withhold", 0.0)

    def delay_end(self, marker: str, seconds: float) -> None:
        """Send ``marker`` only ``seconds`` (real time) after the data it ends."""
        self._ends[_marker(marker)] = ("delay", float(seconds))

    def release_ends(self) -> None:
        """Back to normal; end markers withheld so far are sent now."""
        self._ends.clear()
        for session in list(self._sim.sessions):
            session.release_withheld()

    def end_marker_action(self, marker: str) -> tuple[str, float]:
        """What to do with an end marker: ("send"|"delay"|"withhold", delay seconds)."""
        return self._ends.get(marker, ("send", 0.0))

    # --- connections ----------------------------------------------------------------------

    def drop_all(self) -> None:
        """Cut every API connection at once."""
        self._sim.drop_all()

    def connectivity_lost(self) -> None:
        """Error 1100 to every client; streaming market data pauses."""
        self.connectivity_down = True
        self._broadcast(*LOST)

    def connectivity_restored(self, data_lost: bool = True) -> None:
        """Error 1101 (market-data subscriptions dropped) or 1102 (kept)."""
        self.connectivity_down = False
        if data_lost:
            for session in self._sim.sessions:
                session.subs.tickers.clear()
        self._broadcast(*RESTORED[data_lost])

    def connectivity_blip(self, data_lost: bool = True, seconds: float = 0.0) -> None:
        """1100, then 1101/1102 after ``seconds``."""
        self.connectivity_lost()
        self._sim.loop.call_later(seconds, self.connectivity_restored, data_lost)

    def _broadcast(self, code: int, text: str) -> None:
        for session in list(self._sim.sessions):
            if session.logged_in:
                session.error(-1, code, text)

    # --- orders ---------------------------------------------------------------------------

    def reject_next(self, reason: str = "Simulated rejection by ibsim") -> None:
        """The next order placed is rejected with error 201 and ``reason``."""
        with self._sim.lock:
            self._sim.broker.reject_next(reason)

    def drop_after_next_place(self) -> None:
        """The next placeOrder is accepted, then every connection drops before its acks."""
        self.drop_on_place = True

    def take_drop_on_place(self) -> bool:
        """Whether this placeOrder is the one to drop after (one-shot: disarms itself)."""
        armed, self.drop_on_place = self.drop_on_place, False
        return armed

    def delay_order_acks(self, seconds: float) -> None:
        """Answers to placeOrder / cancelOrder reach the client ``seconds`` (real time) late."""
        if float(seconds) < 0:
            raise ValueError("delay-order-ack needs a delay of zero seconds or more")
        self.order_ack_delay = float(seconds)

    def freeze_fills(self) -> None:
        """Nothing fills until :meth:`unfreeze_fills`."""
        with self._sim.lock:
            self._sim.broker.fills_frozen = True

    def freeze_fills_after(self, chunks: int) -> None:
        """At most ``chunks`` more fill chunks execute (across all orders), then fills freeze.

        Replaces any freeze in force: fills run again until the budget is spent (0 freezes at
        once). :meth:`unfreeze_fills` and :meth:`clear` release the freeze and drop the budget.
        """
        count = int(chunks)
        if count < 0:
            raise ValueError("freeze-fills-after needs a chunk count of zero or more")
        with self._sim.lock:
            self._sim.broker.fill_budget = count
            self._sim.broker.fills_frozen = count == 0
        self._sim.process_soon()

    def unfreeze_fills(self) -> None:
        """Fills run again, with no chunk budget left over from :meth:`freeze_fills_after`."""
        with self._sim.lock:
            self._sim.broker.fills_frozen = False
            self._sim.broker.fill_budget = None
        self._sim.process_soon()

    def fill_while_disconnected(self) -> None:
        """Freeze fills until the next client disconnects, then fill while it is away."""
        self.freeze_fills()
        self.fill_on_disconnect = True

    # --- gateway life ---------------------------------------------------------------------

    def restart(self, keep_state: bool = True) -> None:
        """The nightly restart: everyone dropped, the model reloaded from its saved state."""
        self._sim.restart(keep_state=keep_state)

    def restart_with_id_rollback(self, client_id: int, by: int = 10) -> None:
        """Restart, after which ``client_id``'s nextValidId is ``by`` lower than before."""
        self._sim.restart(keep_state=True)
        with self._sim.lock:
            self._sim.broker.roll_back_ids(int(client_id), int(by))

    def lock_client_id(self, client_id: int) -> None:
        """``client_id`` is refused with 326 until the next restart."""
        self._sim.locked_ids.add(int(client_id))

    def leave_client_id_locked(self, client_id: int) -> None:
        """When ``client_id`` next disconnects, its id stays in use (326) until a restart."""
        self.zombie_ids.add(int(client_id))

    def set_not_logged_in(self, flag: bool = True) -> None:
        """Handshake answers, but no managedAccounts/nextValidId (clients never get ready)."""
        self.not_logged_in = bool(flag)

    def clear(self) -> None:
        """Every switch back to normal (locked ids stay locked until a restart)."""
        self.release_ends()
        self.not_logged_in = False
        self.zombie_ids.clear()
        self.fill_on_disconnect = False
        self.drop_on_place = False
        self.order_ack_delay = 0.0
        if self.connectivity_down:
            self.connectivity_restored(data_lost=False)
        self.unfreeze_fills()

    # --- hooks the simulator calls --------------------------------------------------------

    def on_disconnect(self, session: Session) -> None:
        if session.client_id in self.zombie_ids:
            self.zombie_ids.discard(session.client_id)
            self._sim.locked_ids.add(session.client_id)
        if self.fill_on_disconnect and session.client_id is not None:
            self.fill_on_disconnect = False
            self.unfreeze_fills()

    # --- the control endpoint's view ------------------------------------------------------

    def apply(self, mode: str, args: list[str]) -> Any:
        """Run a mode by its CLI name (``drop-all``, ``delay-end positionEnd 2``, ...)."""
        if mode not in self.modes():
            raise ValueError(f"unknown fault mode {mode!r}; known: {', '.join(self.modes())}")
        return self.modes()[mode](*args)

    def modes(self) -> dict[str, Callable[..., Any]]:
        return {
            "drop-all": self.drop_all,
            "connectivity-lost": self.connectivity_lost,
            "connectivity-restored": lambda kind="1101": self.connectivity_restored(
                _data_lost(kind)
            ),
            "connectivity-blip": lambda kind="1101", seconds="0": self.connectivity_blip(
                _data_lost(kind), float(seconds)
            ),
            "withhold-end": self.withhold_end,
            "delay-end": lambda marker, seconds: self.delay_end(marker, float(seconds)),
            "release-ends": self.release_ends,
            "reject-next": lambda *reason: self.reject_next(" ".join(reason) or "Simulated"),
            "drop-after-place": self.drop_after_next_place,
            "delay-order-ack": lambda seconds: self.delay_order_acks(float(seconds)),
            "freeze-fills": self.freeze_fills,
            "freeze-fills-after": lambda chunks: self.freeze_fills_after(int(chunks)),
            "unfreeze-fills": self.unfreeze_fills,
            "fill-while-disconnected": self.fill_while_disconnected,
            "restart": lambda keep="keep": self.restart(keep_state=keep != "wipe"),
            "restart-rollback-ids": lambda cid, by="10": self.restart_with_id_rollback(
                int(cid), int(by)
            ),
            "lock-client-id": lambda cid: self.lock_client_id(int(cid)),
            "leave-client-id-locked": lambda cid: self.leave_client_id_locked(int(cid)),
            "not-logged-in": lambda flag="on": self.set_not_logged_in(flag != "off"),
            "clock-advance": lambda seconds: self._sim.clock.advance(float(seconds)),
            "clear": self.clear,
        }


def _marker(name: str) -> str:
    if name not in END_MARKERS:
        raise ValueError(f"unknown end marker {name!r}; known: {', '.join(sorted(END_MARKERS))}")
    return name


def _data_lost(kind: str) -> bool:
    if kind not in ("1101", "1102", "lost", "kept"):
        raise ValueError("restore kind is 1101 (data lost) or 1102 (data kept)")
    return kind in ("1101", "lost")
