"""The local demo: publish intents through the real push path and print their outcomes.

What it shows, in order: the trading config written to Firestore (``config/common``: one
strategy, fixed weights on SPY and TLT); a `summary` that succeeds; a `place_order` (market BUY
of 10 SPY) that succeeds with its leg Filled (the stack runs ibsim inside a market session, see
worker.devstack.clock), its leg printed; both messages again with the same idempotency_key,
which must not yield a second distinct outcome event (no second order); an unknown intent and a
`summary` with invalid params, both acked and reported as failed/rejected outcomes. Then the
trading intents, one after the other: `allocation` as a dry run (the planned legs), `allocation`
for real (every leg Filled), `trade_reconciliation` (bookings, blotter, differences with the
broker) and `close_all` of TLT (its leg Filled). With a scenario whose login serves several
accounts (two_accounts), every intent names the first one.

The config is written before the first intent: the worker re-reads it only every
CONFIG_CACHE_SECONDS (15 s), and place_order already reads it (the kill switch).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as gexc

from worker.devstack.emulators import firestore_client_at
from worker.devstack.pubsub_setup import LocalPubSub, Outcome, describe_outcome
from worker.names import names as shared_names

OUTCOME_TIMEOUT_S = 60.0
# After the last expected outcome, how long to keep listening for events that must NOT come
# (a second outcome for a duplicate). Absence has no event to wait on, so this is a bound.
QUIET_PERIOD_S = 3.0
PERMANENT_FAILURE = frozenset({"failed", "rejected"})
SUCCEEDED = frozenset({"succeeded"})
ORDER_PARAMS: Mapping[str, Any] = {
    "symbol": "SPY",
    "side": "BUY",
    "quantity": 10,
    "order_type": "MKT",
}
# What the allocation trades: half the account's NetLiquidation overall, half of that (a
# quarter) given to fixed_weights, whose targets are 30 % SPY and 20 % TLT of its quarter
# (README, "Trading config"): about 124 SPY and 530 TLT on ibsim's default scenario.
TRADING_CONFIG: Mapping[str, Any] = {
    "exposure": {"overall": 0.5, "strategies": {"fixed_weights": 0.5}},
    "strategies": {"fixed_weights": {"weights": {"SPY": 0.3, "TLT": 0.2}}},
}
# A leg's fields worth one line each, after its leg_id (worker.journal's leg record).
LEG_FIELDS = ("order_ref", "status", "filled", "avg_price", "commission")
CANCEL_FIELDS = ("order_ref", "status")

# Where the worker reads the trading config: (collection, document), as in worker/names.json.
CONFIG_DOCUMENT = tuple(
    shared_names()["firestore"][k] for k in ("config_collection", "config_common_document")
)
ConfigWriter = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Step:
    """One intent to publish and the outcome it may produce.

    Attributes:
        label: Name in messages.
        intent: Intent name.
        params: Intent params (anything JSON-able: invalid ones are a step too).
        kinds: Outcome kinds that pass.
        leg_status: If set, the result must list legs and every one must have this status.
        dry_run: Publish with dry_run=true; the result must list the planned legs.
    """

    label: str
    intent: str
    params: object
    kinds: frozenset[str]
    leg_status: str = ""
    dry_run: bool = False


SUMMARY = Step("summary", "summary", {}, SUCCEEDED)
PLACE_ORDER = Step("place_order", "place_order", dict(ORDER_PARAMS), SUCCEEDED, "Filled")


def demo_steps() -> list[Step]:
    """Return the intents the demo publishes after the duplicates, none of which may succeed."""
    return [
        Step("unknown intent", "no_such_intent", {}, PERMANENT_FAILURE),
        # summary.sections is a list of section names; a number fails validation.
        Step("invalid params", "summary", {"sections": 5}, PERMANENT_FAILURE),
    ]


def trading_steps() -> list[tuple[str, Step]]:
    """Return the trading intents (key suffix, step), in order: each depends on the one before."""
    allocate = {"strategies": ["fixed_weights"]}
    return [
        ("plan", Step("allocation (dry run)", "allocation", allocate, SUCCEEDED, dry_run=True)),
        ("alloc", Step("allocation", "allocation", allocate, SUCCEEDED, "Filled")),
        ("recon", Step("trade_reconciliation", "trade_reconciliation", {}, SUCCEEDED)),
        ("close", Step("close_all TLT", "close_all", {"symbols": ["TLT"]}, SUCCEEDED, "Filled")),
    ]


def demo_account(accounts: list[str], out: Callable[[str], None] = print) -> str | None:
    """Return the account the demo's intents name: none for a one-account login, else the first.

    The worker rejects an intent without the account attribute when its login serves several
    accounts, so the demo must pick one there.
    """
    if len(accounts) < 2:
        return None
    out(f"-> the login serves {', '.join(accounts)}; the demo's intents name {accounts[0]}")
    return accounts[0]


def firestore_config_writer(host: str, project: str) -> ConfigWriter:
    """Return a function that sets the trading config (config/common) on a Firestore emulator.

    Args:
        host: The emulator's host:port (FIRESTORE_EMULATOR_HOST of the stack).
        project: The project id the worker reads.
    """
    document = firestore_client_at(host, project).document(*CONFIG_DOCUMENT)

    def write(config: Mapping[str, Any]) -> None:
        document.set(dict(config), timeout=10)

    return write


@dataclass
class DemoRun:
    """The publishing and listening of one demo run; remembers what to expect and what came."""

    pubsub: LocalPubSub
    out: Callable[[str], None]
    timeout: float
    attributes: Mapping[str, str]
    expected: dict[str, Step] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def publish(self, key: str, step: Step) -> None:
        """Publish step's intent under idempotency `key`, announcing a repeat as such."""
        attributes = {"idempotency_key": key, **self.attributes}
        if step.dry_run:
            attributes["dry_run"] = "true"
        if key in self.expected:
            self.out(f"-> publish the same {step.label} again (same idempotency_key={key})")
        else:
            self.out(f"-> publish {step.label}: intent={step.intent!r} params={step.params!r}")
            extra = "  dry_run=true" if step.dry_run else ""
            self.out(f"   idempotency_key={key}{extra}")
        self.expected[key] = step
        body = json.dumps({"intent": step.intent, "params": step.params}).encode()
        self.pubsub.publish_raw(body, attributes)

    def wait(self) -> None:
        """Wait (up to the timeout) until every key published so far has an outcome.

        Counted by key, not by event: a stray event (a duplicate's second outcome) is kept for
        the verdict but does not end the wait for an outcome still missing.
        """
        deadline = time.monotonic() + self.timeout
        while (missing := self.missing()) and (left := deadline - time.monotonic()) > 0:
            got = self.pubsub.pull_outcomes(left, len(missing), outcome_printer(self.out))
            if not got:
                return  # the pull waited out the time left
            self.outcomes += got

    def missing(self) -> list[str]:
        """Keys published without an outcome so far."""
        answered = {_key_of(o) for o in self.outcomes}
        return [key for key in self.expected if key not in answered]

    def listen(self, seconds: float) -> None:
        """Collect whatever else arrives within `seconds` (outcomes that must not come)."""
        self.outcomes += self.pubsub.pull_outcomes(seconds, 10, outcome_printer(self.out))

    def configure(self, write: ConfigWriter) -> bool:
        """Write the demo's trading config; False (and a note) if Firestore refused it."""
        where = "/".join(CONFIG_DOCUMENT)
        self.out(f"-> write the trading config to Firestore {where}: {json.dumps(TRADING_CONFIG)}")
        try:
            write(TRADING_CONFIG)
        except (gexc.GoogleAPIError, OSError) as exc:  # refused, unreachable, timed out
            self.notes.append(f"could not write the trading config: {type(exc).__name__}: {exc}")
            return False
        return True

    def trade(self, prefix: str) -> None:
        """Publish the trading steps one at a time, each after the outcome of the one before.

        A step without an outcome ends the chain: the steps after it act on its result.
        """
        steps = trading_steps()
        for i, (suffix, step) in enumerate(steps):
            key = f"{prefix}-{suffix}"
            self.publish(key, step)
            self.wait()
            if key in self.missing():
                later = ", ".join(s.label for _, s in steps[i + 1 :])
                if later:
                    self.notes.append(f"not published: {later} (after {step.label} had no outcome)")
                return

    def problems(self) -> list[str]:
        """The verdict: see check_outcomes, plus what kept steps from running."""
        return check_outcomes(self.expected, self.outcomes, self.timeout) + self.notes


def run_demo(
    pubsub: LocalPubSub,
    write_config: ConfigWriter,
    out: Callable[[str], None] = print,
    timeout: float = OUTCOME_TIMEOUT_S,
    account: str | None = None,
) -> list[str]:
    """Publish the demo intents, print outcomes as they arrive, and check them.

    Args:
        pubsub: Clients bound to a running stack (topics and subscriptions set up).
        write_config: Sets the trading config the worker reads (firestore_config_writer).
        out: Where to print (print by default).
        timeout: Seconds to wait for each batch of expected outcomes.
        account: The account attribute of every intent (None: no attribute).

    Returns:
        Problems found; empty means every expected outcome arrived and nothing extra did.
    """
    run = DemoRun(pubsub, out, timeout, {"account": account} if account else {})
    prefix = f"demo-{uuid.uuid4().hex[:8]}"
    configured = run.configure(write_config)
    for key, step in ((f"{prefix}-summary", SUMMARY), (f"{prefix}-order", PLACE_ORDER)):
        run.publish(key, step)
        run.wait()
    # Published after the first outcomes, so each duplicate meets a finished key.
    run.publish(f"{prefix}-summary", SUMMARY)
    run.publish(f"{prefix}-order", PLACE_ORDER)
    for i, step in enumerate(demo_steps()):
        run.publish(f"{prefix}-{i}", step)
    run.wait()
    if configured:
        run.trade(prefix)
    # Also the duplicates' quiet period: it began when their batch was answered.
    run.listen(QUIET_PERIOD_S)
    return run.problems()


def check_outcomes(expected: dict[str, Step], outcomes: list[Outcome], timeout: float) -> list[str]:
    """Compare outcomes with the expected steps, keyed by the data's idempotency_key.

    Each key must have exactly one distinct event id (a replayed duplicate repeats the id) of
    an expected kind, with the expected leg status if the step names one (the planned legs for
    a dry run), and no outcome may carry a key nobody published.
    """
    by_key: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_key.setdefault(_key_of(outcome), []).append(outcome)
    problems = [f"unexpected outcome for key {k!r}" for k in by_key if k not in expected]
    for key, step in expected.items():
        problems += _check_step(step, by_key.get(key, []), timeout)
    return problems


def _check_step(step: Step, got: list[Outcome], timeout: float) -> list[str]:
    ids = {o.id for o in got}
    if not got:
        return [f"{step.label}: no outcome event arrived within {timeout:.0f}s"]
    if len(ids) > 1:
        return [f"{step.label}: {len(ids)} distinct outcome events for one key"]
    if got[0].kind not in step.kinds:
        error = _data(got[0]).get("error")
        why = f" ({error.get('code')}: {error.get('message')})" if isinstance(error, dict) else ""
        return [f"{step.label}: expected {'/'.join(sorted(step.kinds))}, got {got[0].kind}{why}"]
    if step.dry_run:
        return [] if outcome_legs(got[0]) else [f"{step.label}: the plan lists no legs"]
    return _check_legs(step, got[0]) if step.leg_status else []


def _check_legs(step: Step, outcome: Outcome) -> list[str]:
    legs = outcome_legs(outcome)
    if not legs:
        return [f"{step.label}: the result lists no legs"]
    return [
        f"{step.label}: leg {leg.get('leg_id')} is {leg.get('status')}, expected {step.leg_status}"
        for leg in legs
        if leg.get("status") != step.leg_status
    ]


def outcome_legs(outcome: Outcome) -> list[dict[str, Any]]:
    """The order legs an outcome reports: result.legs, or error.details.legs for a rejection."""
    data = _data(outcome)
    holder = data.get("result")
    if not isinstance(holder, dict):
        error = data.get("error")
        holder = error.get("details") if isinstance(error, dict) else None
    return _dicts(holder.get("legs") if isinstance(holder, dict) else None)


def describe_leg(leg: Mapping[str, Any]) -> str:
    """One line for an order leg.

    A sent leg: its id, then order_ref, status, filled, avg_price, commission (and the
    strategies it serves, if any). A planned one (a dry run's): symbol, side, quantity and
    limit price.
    """
    if _planned(leg):
        return f"          leg {leg.get('leg_id') or leg.get('id')}  planned  {_plan_facts(leg)}"
    facts = _facts(leg, LEG_FIELDS)
    if isinstance(leg.get("strategies"), dict):
        facts += "  strategies=" + json.dumps(leg["strategies"], sort_keys=True)
    return f"          leg {leg.get('leg_id')}  {facts}"


def _planned(leg: Mapping[str, Any]) -> bool:
    """A leg of a plan that was never sent: allocation's plan legs, or a journal dry_run leg."""
    return "status" not in leg and leg.get("state") in (None, "dry_run")


def _plan_facts(leg: Mapping[str, Any]) -> str:
    contract, order = _dict(leg.get("contract")), _dict(leg.get("order"))
    facts = {"symbol": contract.get("symbol"), "side": order.get("action")}
    facts["quantity"] = order.get("quantity")
    facts["limit_price"] = order.get("limit_price", order.get("order_type"))  # MKT: none
    return _facts(facts, tuple(facts))


def reconciliation_lines(result: Mapping[str, Any]) -> list[str]:
    """trade_reconciliation's bookings, blotter rows and differences with the broker per conId."""
    lines = [f"          booked {result.get('booked')} execution(s) to the strategies now"]
    for row in _dicts(result.get("blotter")):
        facts = _facts(row, ("position", "realized_pnl", "commission"))
        lines.append(f"          blotter {row.get('strategy')}  {_instrument(row)}  {facts}")
    for row in _dicts(result.get("differences")):
        facts = _facts(row, ("ours", "broker", "unattributed"))
        lines.append(f"          difference {_instrument(row)}  {facts}")
    return lines


def close_all_lines(result: Mapping[str, Any]) -> list[str]:
    """close_all's cancels (its legs are printed like every intent's)."""
    cancelled = _dicts(result.get("cancelled"))
    lines = [f"          cancelled {len(cancelled)} order(s) of ours before flattening"]
    for leg in cancelled:
        lines.append(f"          cancel {leg.get('leg_id')}  {_facts(leg, CANCEL_FIELDS)}")
    return lines


# Lines an intent's result adds to its outcome's printout, besides the legs.
RESULT_LINES: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "trade_reconciliation": reconciliation_lines,
    "close_all": close_all_lines,
}


def _instrument(row: Mapping[str, Any]) -> str:
    return f"{row.get('symbol') or '?'} (conId {row.get('con_id')})"


def _facts(row: Mapping[str, Any], names: tuple[str, ...]) -> str:
    """name=value pairs; floats rounded (a price averaged over fills reads 93.04999999999998)."""
    values = ((name, row.get(name)) for name in names)
    return "  ".join(f"{n}={round(v, 6) if isinstance(v, float) else v}" for n, v in values)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _data(outcome: Outcome) -> dict[str, Any]:
    return _dict(outcome.data)


def _key_of(outcome: Outcome) -> str:
    return str(_data(outcome).get("idempotency_key", ""))


def outcome_printer(out: Callable[[str], None]) -> Callable[[Outcome], None]:
    """Return a callback that prints each outcome through `out`: its summary, one line per leg,
    then what its intent's result adds (RESULT_LINES)."""

    def show(outcome: Outcome) -> None:
        out("<- outcome " + describe_outcome(outcome))
        for leg in outcome_legs(outcome):
            out(describe_leg(leg))
        lines = RESULT_LINES.get(outcome.subject, lambda result: [])
        for line in lines(_dict(_data(outcome).get("result"))):
            out(line)

    return show
