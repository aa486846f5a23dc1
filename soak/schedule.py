"""The soak's whole plan, fixed by the seed: runs, batches, and the faults each batch gets.

Everything random is drawn here, up front, from one ``random.Random(seed)``, so a seed names one
plan (``python -m soak --seed S --show-plan`` prints it). Each batch runs ``batch_size`` runs at
once (one allocation, one close_all, place_orders) and gets three faults, one from each family:
the worker's process or its stores (``PROCESS``), the gateway (``GATEWAY``) and Pub/Sub delivery
(``DELIVERY``). Each family is dealt from a shuffled deck, so every kind comes round before any
comes twice: a 20-run soak (5 batches) sees most kinds, a 200-run soak each kind about 7 times.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# What each fault models is documented with its injector (soak/faults.py).
PROCESS = (
    "kill_random",
    "kill_instance",
    "kill_after_send",
    "kill_before_publish",
    "freeze_takeover",
    "firestore_restart",
    "firestore_stall",
    "publish_failure",
)
GATEWAY = ("drop_all", "blip_1101", "blip_1102", "restart", "restart_rollback", "withhold_end")
DELIVERY = ("dup_sequential", "dup_concurrent")
FAMILIES = {"process": PROCESS, "gateway": GATEWAY, "delivery": DELIVERY}
INJECTED = PROCESS + GATEWAY + DELIVERY
# Process faults that wait for a moment of a run; the batch's gateway fault waits for it.
TRIGGERED = frozenset({"kill_after_send", "kill_before_publish", "freeze_takeover"})
# ibsim's default scenario holds SPY, AAPL and TLT; allocation adds QQQ.
SYMBOLS = ("SPY", "QQQ", "AAPL", "TLT")
# Rough prices (ibsim's price seeds), for limit prices that are sure to be marketable.
PRICES = {"SPY": 600.0, "QQQ": 520.0, "AAPL": 230.0, "TLT": 90.0}
STRATEGIES = ("fixed_weights", "dummy")  # the trading config's (soak/stack.py)
END_MARKERS = ("openOrderEnd", "completedOrdersEnd", "execDetailsEnd", "positionEnd")
OVERALL = (0.3, 0.4, 0.5, 0.6)
BATCH_MIX = ("allocation", "close_all", "place_order", "place_order")


@dataclass(frozen=True)
class RunSpec:
    """One run: an idempotency key and the intent published under it."""

    key: str
    intent: str
    params: dict[str, Any]


@dataclass(frozen=True)
class FaultSpec:
    """One fault of a batch.

    Attributes:
        kind: One of PROCESS, GATEWAY or DELIVERY.
        delay: Seconds after the batch's publish (timed faults) before it strikes.
        target: Index in the batch of the run it aims at (trigger and duplicate faults).
        args: Kind-specific arguments (end marker, rollback size, outage seconds, variant).
    """

    kind: str
    delay: float = 0.0
    target: int = 0
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchPlan:
    """Runs published together and the faults they meet."""

    index: int
    overall: float
    runs: tuple[RunSpec, ...]
    faults: tuple[FaultSpec, ...] = field(default_factory=tuple)

    def fault(self, family: str) -> FaultSpec | None:
        """This batch's fault of ``family`` (process, gateway, delivery), if any."""
        kinds = FAMILIES[family]
        return next((f for f in self.faults if f.kind in kinds), None)


class Deck:
    """Kinds dealt in shuffled rounds: each comes once per round."""

    def __init__(self, kinds: tuple[str, ...], rng: random.Random) -> None:
        self._kinds, self._rng = kinds, rng
        self._left: list[str] = []

    def deal(self) -> str:
        if not self._left:
            self._left = list(self._kinds)
            self._rng.shuffle(self._left)
        return self._left.pop()


def build(
    seed: int, runs: int, batch_size: int = 4, only: frozenset[str] | None = None
) -> list[BatchPlan]:
    """The plan of a soak of ``runs`` runs: batches of ``batch_size``, a fault of each family.

    Args:
        seed: Seeds every draw.
        runs: How many runs (keys) in all.
        batch_size: Runs published together.
        only: Restrict the faults to these kinds (a family left without kinds gets none).
    """
    if runs < 1 or batch_size < 1:
        raise ValueError("runs and batch_size must be at least 1")
    unknown = (only or frozenset()) - set(INJECTED)
    if unknown:
        raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
    rng = random.Random(seed)  # noqa: S311 - a reproducible plan, not a secret
    decks = _decks(rng, only)
    plans, overall = [], OVERALL[0]
    for index, start in enumerate(range(0, runs, batch_size)):
        size = min(batch_size, runs - start)
        specs = tuple(_run(rng, seed, start + i, kind) for i, kind in enumerate(_mix(rng, size)))
        overall = rng.choice([o for o in OVERALL if o != overall])
        faults = tuple(_fault(rng, deck.deal(), specs) for deck in decks)
        plans.append(BatchPlan(index, overall, specs, faults))
    return plans


def _decks(rng: random.Random, only: frozenset[str] | None) -> list[Deck]:
    decks = []
    for kinds in FAMILIES.values():
        chosen = tuple(k for k in kinds if only is None or k in only)
        if chosen:
            decks.append(Deck(chosen, rng))
    return decks


def _mix(rng: random.Random, size: int) -> list[str]:
    kinds = [BATCH_MIX[i % len(BATCH_MIX)] for i in range(max(size, len(BATCH_MIX)))]
    chosen = kinds[:size]
    rng.shuffle(chosen)
    return chosen


def _run(rng: random.Random, seed: int, number: int, intent: str) -> RunSpec:
    key = f"soak-{seed}-{number:04d}"
    return RunSpec(key, intent, PARAMS[intent](rng))


def _place_order(rng: random.Random) -> dict[str, Any]:
    symbol, side = rng.choice(SYMBOLS), rng.choice(("BUY", "SELL"))
    params: dict[str, Any] = {"symbol": symbol, "side": side, "quantity": rng.randint(1, 20)}
    if rng.random() < 0.3:  # a limit far through the market: marketable, fills at once
        factor = 1.2 if side == "BUY" else 0.8
        params.update(order_type="LMT", limit_price=round(PRICES[symbol] * factor, 2))
    return {**params, "wait_seconds": 3}


def _close_all(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.35:  # what one strategy holds (its part only, booked back)
        return {"strategies": [rng.choice(STRATEGIES)], "wait_seconds": 5}
    symbols = sorted(rng.sample(SYMBOLS, rng.randint(1, 3)))
    return {"symbols": symbols, "wait_seconds": 5}


def _allocation(rng: random.Random) -> dict[str, Any]:
    del rng  # every allocation trades both strategies; the batch's exposure varies instead
    return {"wait_seconds": 5}


PARAMS = {"place_order": _place_order, "close_all": _close_all, "allocation": _allocation}


def _fault(rng: random.Random, kind: str, runs: tuple[RunSpec, ...]) -> FaultSpec:
    """Draw the kind's timing, target and arguments (always the same draws for a kind)."""
    delay = round(rng.uniform(0.05, 1.0), 2)  # while the batch's runs are in flight
    orders = [i for i, r in enumerate(runs) if r.intent == "place_order"] or [0]
    target = rng.choice(orders) if kind in TARGETS_AN_ORDER else rng.randrange(len(runs))
    return FaultSpec(kind, delay, target, ARGS.get(kind, _no_args)(rng))


def _no_args(rng: random.Random) -> tuple[str, ...]:
    return ()


TARGETS_AN_ORDER = frozenset({"kill_after_send", "freeze_takeover"})
ARGS = {
    "freeze_takeover": lambda rng: (rng.choice(("planned", "sent")),),
    "firestore_stall": lambda rng: (f"{rng.uniform(1.0, 4.0):.1f}",),
    "blip_1101": lambda rng: (f"{rng.uniform(0.2, 3.0):.1f}",),
    "blip_1102": lambda rng: (f"{rng.uniform(0.2, 3.0):.1f}",),
    "restart_rollback": lambda rng: (str(rng.randint(5, 40)),),
    "kill_instance": lambda rng: (str(rng.randint(5, 40)),),
    "withhold_end": lambda rng: (rng.choice(END_MARKERS), f"{rng.uniform(1.0, 4.0):.1f}"),
    "dup_sequential": lambda rng: (str(rng.randint(1, 3)),),
    "dup_concurrent": lambda rng: (str(rng.randint(2, 4)),),
}


def describe(plans: list[BatchPlan]) -> str:
    """The plan as text, one line per run and per fault (``--show-plan``)."""
    lines = []
    for plan in plans:
        lines.append(f"batch {plan.index}  exposure.overall={plan.overall}")
        lines += [f"  run   {r.key} {r.intent} {r.params}" for r in plan.runs]
        lines += [
            f"  fault {f.kind} delay={f.delay}s target={plan.runs[f.target].key} {list(f.args)}"
            for f in plan.faults
        ]
    return "\n".join(lines)
