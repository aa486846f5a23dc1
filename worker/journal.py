"""The order journal: the only way an intent sends or cancels an order (``ctx.orders``).

Every order is a *leg* of the run, named by the intent (``leg_id``) and written to the run's
record before anything reaches the broker (decisions.md, "Orders: one journal, one way out"):

    planned --(gateway acknowledged)--> sent --(Filled / Cancelled / rejected)--> terminal
    planned --(no acknowledgement, connection lost)--> unknown

Each leg's orderRef is derived from (deployment, key, leg_id), so the broker itself remembers
which run sent which order. Before sending a leg on a later attempt, after any reconnect during
the run, or when the leg is already in the record, the journal searches every client's open
orders, the completed orders and today's executions for that orderRef: found -> the order is
adopted, never sent again; all three answered completely and nothing found -> it is sent; any
answer missing -> OrderStateUnknown (retryable). "No answer" is never "not there".

A plan (the legs and the prices used) is computed once and kept in the record's
``recovery_point``; a takeover resumes it instead of computing a new one from fresher prices.
Writes go through the run's ``Lease``: a superseded run can neither journal nor send.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from worker.broker.codes import TERMINAL_STATUSES
from worker.broker.session import ScopedBroker
from worker.envelope import digest
from worker.errors import (
    GatewayNotReady,
    IntentFailed,
    IntentTimeout,
    OrderStateUnknown,
)
from worker.runs import Lease

log = logging.getLogger(__name__)
LEG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
REF_PREFIX = "ibw"
REF_HASH_CHARS = 12  # 48 bits: two runs sharing a prefix among a day's orders is ~1e-7 likely
MAX_REF = 40
SENT_OR_DONE = frozenset({"sent", "terminal"})


def order_ref(deployment: str, key: str, leg_id: str) -> str:
    """``ibw:<12 hex of hash(deployment, key)>:<leg>``, at most 40 characters.

    Readable in TWS and on statements; a leg id that does not fit is replaced by its hash.
    """
    head = f"{REF_PREFIX}:{digest(deployment, key)[:REF_HASH_CHARS]}:"
    room = MAX_REF - len(head)
    leg = leg_id if len(leg_id) <= room else f"h{digest(leg_id)[: room - 1]}"
    return head + leg


class OrderJournal:
    """The legs of one run, and the calls that send, settle and cancel them."""

    def __init__(
        self,
        lease: Lease,
        broker: ScopedBroker,
        *,
        key: str,
        account: str,
        dry_run: bool,
        reconnected: Callable[[], bool],
        timeout: float,
        ack_seconds: float = 10.0,
        search_seconds: float = 10.0,
    ) -> None:
        self._lease = lease
        self._broker = broker
        self._key = key
        self._account = account
        self._dry_run = dry_run
        self._reconnected = reconnected
        self._timeout = timeout
        self._ack = ack_seconds
        self._search_wait = search_seconds
        self._legs: dict[str, dict[str, Any]] = dict(lease.record.get("legs") or {})

    @property
    def legs(self) -> dict[str, dict[str, Any]]:
        """Every leg of this run so far, by leg id (copies)."""
        return {leg_id: dict(leg) for leg_id, leg in self._legs.items()}

    def order_ref(self, leg_id: str) -> str:
        return order_ref(self._lease.store.deployment, self._key, leg_id)

    def plan(self, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The run's plan: the one an earlier attempt persisted, else ``compute()``'s, persisted
        before the first order so a takeover resumes it."""
        point = self._lease.record.get("recovery_point") or {}
        if point.get("plan") is not None:
            log.info("resuming the plan of an earlier attempt")
            return point["plan"]
        plan = compute()
        if not self._dry_run:
            self._lease.write({"recovery_point": {"stage": "planned", "plan": plan, "at": _now()}})
        return plan

    def place(
        self,
        leg_id: str,
        contract: dict[str, Any],
        order: dict[str, Any],
        approve: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Send leg ``leg_id`` once, ever: journal it, search if needed, then send.

        Args:
            leg_id: the intent's name for this order, stable across attempts.
            contract: qualified contract spec (``con_id``, ``symbol``, ``sec_type``, ...).
            order: ``action``, ``quantity``, ``order_type``, ``limit_price``, ``tif``.
            approve: the risk gate; called only when a NEW order is about to leave (not for a
                leg already at the broker), raising to refuse it.

        Returns:
            The leg as journalled (state ``sent`` or ``terminal``; ``dry_run`` when dry).
        """
        if not LEG_ID.match(leg_id):
            raise IntentFailed(f"leg id {leg_id[:80]!r} must match {LEG_ID.pattern}")
        leg = self._legs.get(leg_id)
        if leg is not None and leg["state"] in SENT_OR_DONE:
            return dict(leg)
        ref = self.order_ref(leg_id)
        spec = {**order, "order_ref": ref, "account": self._account}
        base = {"leg_id": leg_id, "order_ref": ref, "contract": contract, "order": spec}
        if self._dry_run:
            return {**base, "state": "dry_run"}
        if leg is not None or self._lease.attempt > 1 or self._reconnected():
            found = self._search(ref)
            if found is not None:
                return self._save(leg_id, {**base, **found})
        if approve is not None:
            approve()
        self._save(leg_id, {**base, "state": "planned", "planned_at": _now()})
        return self._send(leg_id, base, contract, spec)

    def settle(self, leg_ids: list[str], wait: float) -> list[dict[str, Any]]:
        """Wait up to ``wait`` seconds for the sent legs to end; journal those that did."""
        sent = [i for i in leg_ids if self._legs.get(i, {}).get("state") == "sent"]
        refs = [(self._legs[i]["order_ref"], int(self._legs[i].get("perm_id") or 0)) for i in sent]
        if refs:
            states = self._call(lambda gw: gw.settle(refs, wait), wait + self._timeout)
            for leg_id, state in zip(sent, states, strict=True):
                self._update(leg_id, state)
        return [dict(self._legs[i]) for i in leg_ids if i in self._legs]

    def cancel(self, orders: list[dict[str, Any]], wait: float) -> list[dict[str, Any]]:
        """Cancel open orders and wait for IB to confirm each (journalled as legs
        ``cancel-<permId>``). Raises OrderStateUnknown when a confirmation does not come in
        time: a cancel is never assumed to have worked.

        Args:
            orders: open orders as ``gw.open_orders`` lists them (``order_ref``, ``perm_id``).
            wait: seconds to wait for all confirmations together.
        """
        if self._dry_run:
            return [{**_cancel_leg(o), "state": "dry_run"} for o in orders]
        todo = [o for o in orders if self._legs.get(_cancel_id(o), {}).get("state") != "terminal"]
        if not todo:
            return [dict(self._legs[_cancel_id(o)]) for o in orders]
        self._lease.check()
        for order in todo:
            self._save(_cancel_id(order), {**_cancel_leg(order), "state": "planned"})
        targets = [(o["order_ref"], int(o["perm_id"])) for o in todo]
        states = self._call(lambda gw: gw.cancel(targets, wait), wait + self._timeout)
        legs = [self._update(_cancel_id(o), s) for o, s in zip(todo, states, strict=True)]
        open_ = [leg["leg_id"] for leg in legs if leg["state"] != "terminal"]
        if open_:
            raise OrderStateUnknown(f"cancels not confirmed within {wait:.0f}s: {open_}")
        return [dict(self._legs[_cancel_id(o)]) for o in orders]

    # -- internals -------------------------------------------------------------------------
    def _send(
        self, leg_id: str, base: dict[str, Any], contract: dict[str, Any], spec: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            state = self._call(
                lambda gw: gw.place(contract, spec, self._lease.check, self._ack),
                self._ack + self._timeout,
            )
        except (GatewayNotReady, IntentTimeout, OrderStateUnknown) as exc:
            self._save_quietly(leg_id, {**base, "state": "unknown", "reason": exc.message})
            raise OrderStateUnknown(
                f"leg {leg_id} may have reached IB ({exc.message}); the next attempt searches "
                "for it before sending anything"
            ) from exc
        if "error_code" in state:
            return self._save(leg_id, {**base, **state, "state": "terminal", "rejected": True})
        return self._save(leg_id, {**base, **state, "state": _state_of(state)})

    def _search(self, ref: str) -> dict[str, Any] | None:
        wait = self._search_wait
        found = self._call(lambda gw: gw.find(ref, wait), 3 * wait + self._timeout)
        orders = found["open"] or found["completed"]
        if len(orders) > 1:
            log.error("%d broker orders carry orderRef %s; adopting the first", len(orders), ref)
        if orders:
            return _adopted(orders[0], found["fills"])
        if found["fills"]:
            return _from_fills(found["fills"])
        return None

    def _update(self, leg_id: str, state: dict[str, Any]) -> dict[str, Any]:
        leg = {**self._legs[leg_id], **{k: v for k, v in state.items() if v is not None}}
        leg["state"] = _state_of(leg)
        return self._save(leg_id, leg)

    def _save(self, leg_id: str, leg: dict[str, Any]) -> dict[str, Any]:
        leg = {**leg, "updated_at": _now()}
        self._lease.write({self._lease.store.field_path("legs", leg_id): leg})
        self._legs[leg_id] = leg
        return dict(leg)

    def _save_quietly(self, leg_id: str, leg: dict[str, Any]) -> None:
        try:
            self._save(leg_id, leg)
        except Exception as exc:  # the leg stays "planned", which is searched just the same
            log.warning("could not journal leg %s as unknown: %s", leg_id, exc)

    def _call(self, fn: Callable[[Any], Any], timeout: float) -> Any:
        return self._broker.call(fn, timeout)


def _cancel_id(order: dict[str, Any]) -> str:
    return f"cancel-{order['perm_id']}"


def _cancel_leg(order: dict[str, Any]) -> dict[str, Any]:
    keep = ("order_ref", "perm_id", "order_id", "symbol", "con_id", "action", "quantity")
    return {"leg_id": _cancel_id(order), "kind": "cancel", **{k: order.get(k) for k in keep}}


def _state_of(state: dict[str, Any]) -> str:
    return "terminal" if state.get("status") in TERMINAL_STATUSES else "sent"


def _adopted(order: dict[str, Any], fills: list[dict[str, Any]]) -> dict[str, Any]:
    state = {
        "order_id": order["order_id"],
        "perm_id": order["perm_id"],
        "status": order["status"],
        "filled": order.get("filled"),
        "avg_price": order.get("avg_fill_price"),
        "adopted": True,
    }
    if fills:
        state.update(_fill_totals(fills))
    return {**state, "state": _state_of(state)}


def _from_fills(fills: list[dict[str, Any]]) -> dict[str, Any]:
    first = fills[0]
    state = {"order_id": first["order_id"], "perm_id": first["perm_id"], "adopted": True}
    return {**state, **_fill_totals(fills), "status": "Filled", "state": "terminal"}


def _fill_totals(fills: list[dict[str, Any]]) -> dict[str, Any]:
    shares = sum(f["shares"] or 0.0 for f in fills)
    value = sum((f["shares"] or 0.0) * (f["price"] or 0.0) for f in fills)
    return {
        "filled": shares,
        "avg_price": value / shares if shares else None,
        "commission": sum(f["commission"] or 0.0 for f in fills),
    }


def _now() -> datetime:
    return datetime.now(UTC)
