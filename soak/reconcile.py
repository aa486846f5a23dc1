"""The verdict: the broker's orders against the journal, and the outcome events per key.

Pure functions of the evidence (no I/O), so they are tested on hand-made evidence too.

- A *leg* is every order a run planned: each leg of its persisted plan (``recovery_point``)
  and each leg its journal holds (the record's ``legs``), cancels excluded. Its orderRef is
  ``worker.journal.order_ref(deployment, key, leg_id)``.
- A *duplicate* is an orderRef that two or more broker orders (distinct permIds) carry.
- A *lost* leg has no broker order and no refusal: IB did not reject it and its run did not
  end with a failure that says so (failed, rejected, skipped). A leg "rejected" with IB 103
  (duplicate order id) counts as lost: IB refused the worker's choice of id, not the order,
  which never existed.
- An *unjournalled* order carries one of our keys' orderRefs that no leg planned.
- Each key must have exactly one outcome event id, hash(deployment, key); republished copies of
  it (same ce-id) are counted, not failed. Each must have exactly one BigQuery outcome row.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from soak.collector import Seen
from soak.probe import BrokerOrder
from worker.envelope import digest
from worker.journal import order_ref

REFUSING_OUTCOMES = frozenset({"failed", "rejected", "skipped"})
DUPLICATE_ORDER_ID = 103  # IB: the order id was used before; the order was not taken


@dataclass(frozen=True)
class Leg:
    """One planned order of one run."""

    key: str
    leg_id: str
    order_ref: str
    state: str  # the journal's state, or "plan only" when the journal never wrote it
    rejected: bool = False
    adopted: bool = False
    error_code: int = 0


@dataclass
class Reconciliation:
    """What reconciling found (see the module docstring for the definitions)."""

    legs: list[Leg] = field(default_factory=list)
    broker: dict[str, set[int]] = field(default_factory=dict)
    duplicates: dict[str, set[int]] = field(default_factory=dict)
    lost: list[Leg] = field(default_factory=list)
    refused: list[Leg] = field(default_factory=list)
    unjournalled: dict[str, set[int]] = field(default_factory=dict)
    ids_per_key: Counter[int] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    messages: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    dead_lettered: list[str] = field(default_factory=list)
    bigquery_rows: int = 0
    bigquery_wrong: list[str] = field(default_factory=list)
    retried_runs: int = 0

    @property
    def orders(self) -> int:
        """Broker orders (distinct permIds) carrying our legs' orderRefs."""
        return len({p for perms in self.broker.values() for p in perms})

    @property
    def ok(self) -> bool:
        """No duplicate, no lost leg, exactly one outcome (and one row) per key."""
        bad = (self.duplicates, self.lost, self.unjournalled, self.missing, self.extra)
        return not any(bad) and not self.bigquery_wrong


def reconcile(
    keys: list[str],
    records: dict[str, dict[str, Any] | None],
    broker: list[BrokerOrder],
    outcomes: list[Seen],
    dead_letters: list[str],
    bigquery_ids: list[str],
    deployment: str,
) -> Reconciliation:
    """Reconcile the evidence of a soak whose runs had ``keys``."""
    result = Reconciliation()
    by_ref = _broker_by_ref(broker)
    ours = {order_ref(deployment, key, ""): key for key in keys}
    for key in keys:
        record = records.get(key) or {}
        result.legs += planned_legs(key, record, deployment)
        result.retried_runs += int(record.get("attempt") or 1) > 1
    _judge_legs(result, by_ref, records)
    planned = {leg.order_ref for leg in result.legs}
    result.unjournalled = {
        ref: perms
        for ref, perms in by_ref.items()
        if ref not in planned and ref.rsplit(":", 1)[0] + ":" in ours
    }
    _judge_outcomes(result, keys, outcomes, deployment)
    result.dead_lettered = sorted(set(dead_letters) | _dead_lettered(outcomes))
    _judge_bigquery(result, keys, bigquery_ids, deployment)
    return result


def planned_legs(key: str, record: dict[str, Any], deployment: str) -> list[Leg]:
    """Every order leg the record's plan or journal names (cancels are not orders)."""
    journal = {
        leg_id: leg
        for leg_id, leg in (record.get("legs") or {}).items()
        if leg.get("kind") != "cancel"
    }
    ids = dict.fromkeys([*_plan_leg_ids(record), *journal])
    legs = []
    for leg_id in ids:
        leg = journal.get(leg_id, {})
        ref = leg.get("order_ref") or order_ref(deployment, key, leg_id)
        state = str(leg.get("state") or "plan only")
        flags = bool(leg.get("rejected")), bool(leg.get("adopted")), int(leg.get("error_code") or 0)
        legs.append(Leg(key, leg_id, ref, state, *flags))
    return legs


def _plan_leg_ids(record: dict[str, Any]) -> list[str]:
    """allocation and close_all plan a list of legs; place_order's plan is its one leg."""
    plan = (record.get("recovery_point") or {}).get("plan")
    if not plan:
        return []
    if "legs" in plan:
        return [str(leg["id"]) for leg in plan["legs"]]
    return ["order"]


def _broker_by_ref(broker: list[BrokerOrder]) -> dict[str, set[int]]:
    by_ref: dict[str, set[int]] = defaultdict(set)
    for order in broker:
        if order.order_ref and order.perm_id:
            by_ref[order.order_ref].add(order.perm_id)
    return dict(by_ref)


def _judge_legs(
    result: Reconciliation, by_ref: dict[str, set[int]], records: dict[str, Any]
) -> None:
    for leg in result.legs:
        perms = by_ref.get(leg.order_ref, set())
        if perms:
            result.broker[leg.order_ref] = perms
            if len(perms) > 1:
                result.duplicates[leg.order_ref] = perms
        elif leg.error_code == DUPLICATE_ORDER_ID:
            result.lost.append(leg)  # refused for its id: the order itself never existed
        elif leg.rejected or _outcome_kind(records.get(leg.key)) in REFUSING_OUTCOMES:
            result.refused.append(leg)
        else:
            result.lost.append(leg)


def _outcome_kind(record: dict[str, Any] | None) -> str:
    outcome = (record or {}).get("outcome") or {}
    return str(outcome.get("outcome") or "")


def _judge_outcomes(
    result: Reconciliation, keys: list[str], outcomes: list[Seen], deployment: str
) -> None:
    by_key: dict[str, list[Seen]] = defaultdict(list)
    for seen in outcomes:
        by_key[seen.key].append(seen)
    for key in keys:
        got = by_key.get(key, [])
        ids = {s.event_id for s in got}
        result.ids_per_key[len(ids)] += 1
        result.messages += len(got)
        if not ids:
            result.missing.append(key)
        elif ids != {digest(deployment, key)}:
            result.extra.append(key)
        if got:
            result.kinds[got[0].kind] += 1
            result.failures.update([got[0].error_code] if got[0].error_code else [])


def _dead_lettered(outcomes: list[Seen]) -> set[str]:
    return {s.key for s in outcomes if s.error_code == "dead_lettered"}


def _judge_bigquery(
    result: Reconciliation, keys: list[str], ids: list[str], deployment: str
) -> None:
    rows = Counter(ids)
    result.bigquery_rows = len(ids)
    for key in keys:
        count = rows.get(digest(deployment, key), 0)
        if count != 1 and key not in result.missing:
            result.bigquery_wrong.append(f"{key}: {count} rows")
