"""Per-strategy books in Firestore: holdings, strategy state, our orders' shares, bookings.

Layout (the earlier system's ``positions/<mode>/holdings/<strategy>`` = ``{conId: quantity}``
is kept as it was, so its users' data carries over):

- ``positions/<mode>/holdings/<strategy>``: ``{str(conId): quantity}``.
- ``positions/<mode>/orders/<hash of orderRef>``: which strategies an order of ours serves
  (``shares``: signed quantity per strategy, all of the order's sign) and for which run.
- ``positions/<mode>/bookings/<hash of execId>``: one document per execution booked, created
  in the same atomic batch that moves the holdings, so an execution is booked once however
  often it is seen (allocation's own settle, trade_reconciliation, a redelivery).
- ``positions/<mode>/strategy_state/<strategy>``: the state a strategy returned last run.
- ``positions/<mode>/cursors/<name>``: where a long job (market-data collection) stopped.

Fills are split over an order's strategies pro rata to their shares. When strategies of one
run want opposite sides of one instrument, the crossing part never reaches the broker: it is
booked at once as an internal cross (booking id ``cross:<orderRef>``), and the order carries
only the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from worker.envelope import digest
from worker.errors import StoreUnavailable

ROOT = "positions"
# An order's share that belongs to no strategy (closing a position partly nobody's): split
# like the others, never written to any holdings.
UNATTRIBUTED = "_unattributed"


class Books:
    """The strategy books of one trading mode (thread-safe: every call is one Firestore op)."""

    def __init__(self, client: firestore.Client, mode: str) -> None:
        self._client = client
        self._root = client.collection(ROOT).document(mode)

    # -- reads -------------------------------------------------------------------------------
    def holdings(self, strategies: list[str] | None = None) -> dict[str, dict[int, float]]:
        """``{strategy: {conId: quantity}}`` for ``strategies`` (all when None)."""
        docs = self._call(lambda: list(self._root.collection("holdings").stream(timeout=10)))
        books = {d.id: {int(k): float(v) for k, v in (d.to_dict() or {}).items()} for d in docs}
        if strategies is None:
            return books
        return {s: books.get(s, {}) for s in strategies}

    def state(self, strategy: str) -> dict[str, Any]:
        snap = self._call(lambda: self._root.collection("strategy_state").document(strategy).get())
        return (snap.to_dict() or {}).get("state", {}) if snap.exists else {}

    def order_shares(self, order_ref: str) -> dict[str, float] | None:
        """The strategies an order of ours serves, or None for an order not ours/unknown."""
        snap = self._call(lambda: self._order(order_ref).get(timeout=10))
        return dict((snap.to_dict() or {}).get("shares") or {}) if snap.exists else None

    # -- writes ------------------------------------------------------------------------------
    def save_state(self, strategy: str, state: dict[str, Any], key: str) -> None:
        doc = {"state": state, "key": key, "updated_at": _now()}
        self._call(lambda: self._root.collection("strategy_state").document(strategy).set(doc))

    def register_order(self, order_ref: str, shares: dict[str, float], **about: Any) -> None:
        """Record which strategies an order serves, before it is sent (idempotent)."""
        doc = {"order_ref": order_ref, "shares": shares, "registered_at": _now(), **about}
        self._call(lambda: self._order(order_ref).set(doc))

    def book(self, booking_id: str, con_id: int, split: dict[str, float], **about: Any) -> bool:
        """Move holdings by ``split`` (strategy -> signed quantity) once per ``booking_id``.

        Returns False when that booking was made before (nothing changes then).
        """
        batch = self._client.batch()
        record = {"booking_id": booking_id, "con_id": con_id, "split": split, **about}
        batch.create(self._booking(booking_id), {**record, "booked_at": _now()})
        for strategy, quantity in split.items():
            if quantity and strategy != UNATTRIBUTED:
                ref = self._root.collection("holdings").document(strategy)
                batch.set(ref, {str(con_id): firestore.Increment(quantity)}, merge=True)
        try:
            self._call(lambda: batch.commit(timeout=10))
        except gexc.AlreadyExists:
            return False
        return True

    def booked(self, booking_id: str) -> bool:
        return self._call(lambda: self._booking(booking_id).get(timeout=10)).exists

    def cursor(self, name: str) -> dict[str, Any]:
        """Where a long job (market-data collection) stopped last time."""
        snap = self._call(lambda: self._root.collection("cursors").document(name).get(timeout=10))
        return snap.to_dict() or {} if snap.exists else {}

    def save_cursor(self, name: str, cursor: dict[str, Any]) -> None:
        doc = {**cursor, "updated_at": _now()}
        self._call(lambda: self._root.collection("cursors").document(name).set(doc))

    # -- internals ---------------------------------------------------------------------------
    def _order(self, order_ref: str) -> firestore.DocumentReference:
        return self._root.collection("orders").document(digest(order_ref)[:40])

    def _booking(self, booking_id: str) -> firestore.DocumentReference:
        return self._root.collection("bookings").document(digest(booking_id)[:40])

    @staticmethod
    def _call(fn: Any) -> Any:
        try:
            return fn()
        except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError) as exc:
            raise StoreUnavailable(f"Firestore unavailable: {type(exc).__name__}") from exc


def book_executions(
    books: Books, fills: list[dict[str, Any]], key: str
) -> tuple[int, list[str], list[dict[str, Any]]]:
    """Book executions (as ``gw.executions`` lists them) through their orderRef's shares.

    Returns how many were booked now, the execIds no strategy owns, and each fill with the
    split it was (or had been) booked with.
    """
    booked, unattributed, rows = 0, [], []
    shares_of: dict[str, dict[str, float] | None] = {}
    for fill in fills:
        ref = fill.get("order_ref") or ""
        if ref not in shares_of:
            shares_of[ref] = books.order_shares(ref) if ref else None
        signed = fill["shares"] if fill["side"] == "BOT" else -fill["shares"]
        split = pro_rata(signed, shares_of[ref] or {})
        if not split:
            unattributed.append(fill["exec_id"])
        elif books.book(f"exec:{fill['exec_id']}", fill["con_id"], split, key=key):
            booked += 1
        rows.append({**fill, "strategies": split})
    return booked, unattributed, rows


def pro_rata(quantity: float, shares: dict[str, float]) -> dict[str, float]:
    """Split a signed fill over same-signed strategy shares in proportion to them."""
    total = sum(shares.values())
    if not total:
        return {}
    return {s: quantity * q / total for s, q in shares.items()}


def net_and_cross(wanted: dict[str, float]) -> tuple[float, dict[str, float], dict[str, float]]:
    """Consolidate strategies' signed deltas for one instrument.

    Returns the net order quantity, each strategy's share of that order (all of the order's
    sign), and each strategy's internal cross (booked without a broker order).
    """
    buys = sum(q for q in wanted.values() if q > 0)
    sells = -sum(q for q in wanted.values() if q < 0)
    crossed = min(buys, sells)
    cross: dict[str, float] = {}
    order: dict[str, float] = {}
    for strategy, q in wanted.items():
        side_total = buys if q > 0 else sells
        part = crossed * abs(q) / side_total if side_total else 0.0
        cross[strategy] = part if q > 0 else -part
        rest = q - cross[strategy]
        if abs(rest) > 1e-9:
            order[strategy] = rest
    return buys - sells, order, {s: c for s, c in cross.items() if c}


def _now() -> datetime:
    return datetime.now(UTC)
