"""The local demo: publish a few intents through the real push path and print their outcomes.

What it shows, in order: a `summary` that succeeds; a `place_order` (market BUY of 10 SPY) that
succeeds with its leg Filled (the stack runs ibsim inside a market session, see
worker.devstack.clock), its leg printed; both messages again with the same idempotency_key, which
must not yield a second distinct outcome event (no second order); an unknown intent and a
`summary` with invalid params, both acked and reported as failed/rejected outcomes. With a
scenario whose login serves several accounts (two_accounts), every intent names the first one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.devstack.pubsub_setup import LocalPubSub, Outcome, describe_outcome

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
# A leg's fields worth one line each, after its leg_id (worker.journal's leg record).
LEG_FIELDS = ("order_ref", "status", "filled", "avg_price", "commission")


@dataclass(frozen=True)
class Step:
    """One intent to publish and the outcome it may produce.

    Attributes:
        label: Name in messages.
        intent: Intent name.
        params: Intent params (anything JSON-able: invalid ones are a step too).
        kinds: Outcome kinds that pass.
        leg_status: If set, the result must list legs and every one must have this status.
    """

    label: str
    intent: str
    params: object
    kinds: frozenset[str]
    leg_status: str = ""


SUMMARY = Step("summary", "summary", {}, SUCCEEDED)
PLACE_ORDER = Step("place_order", "place_order", dict(ORDER_PARAMS), SUCCEEDED, "Filled")


def demo_steps() -> list[Step]:
    """Return the intents the demo publishes after the duplicates, none of which may succeed."""
    return [
        Step("unknown intent", "no_such_intent", {}, PERMANENT_FAILURE),
        # summary.sections is a list of section names; a number fails validation.
        Step("invalid params", "summary", {"sections": 5}, PERMANENT_FAILURE),
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


@dataclass
class DemoRun:
    """The publishing and listening of one demo run; remembers what to expect and what came."""

    pubsub: LocalPubSub
    out: Callable[[str], None]
    timeout: float
    attributes: Mapping[str, str]
    expected: dict[str, Step] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)

    def publish(self, key: str, step: Step) -> None:
        """Publish step's intent under idempotency `key`, announcing a repeat as such."""
        if key in self.expected:
            self.out(f"-> publish the same {step.label} again (same idempotency_key={key})")
        else:
            self.out(f"-> publish {step.label}: intent={step.intent!r} params={step.params!r}")
            self.out(f"   idempotency_key={key}")
        self.expected[key] = step
        body = json.dumps({"intent": step.intent, "params": step.params}).encode()
        self.pubsub.publish_raw(body, {"idempotency_key": key, **self.attributes})

    def wait(self) -> None:
        """Wait (up to the timeout) until every key published so far has an outcome."""
        missing = len(self.expected) - len(self.outcomes)
        self.outcomes += self.pubsub.pull_outcomes(self.timeout, missing, outcome_printer(self.out))

    def listen(self, seconds: float) -> None:
        """Collect whatever else arrives within `seconds` (outcomes that must not come)."""
        self.outcomes += self.pubsub.pull_outcomes(seconds, 10, outcome_printer(self.out))

    def problems(self) -> list[str]:
        """The verdict: see check_outcomes."""
        return check_outcomes(self.expected, self.outcomes, self.timeout)


def run_demo(
    pubsub: LocalPubSub,
    out: Callable[[str], None] = print,
    timeout: float = OUTCOME_TIMEOUT_S,
    account: str | None = None,
) -> list[str]:
    """Publish the demo intents, print outcomes as they arrive, and check them.

    Args:
        pubsub: Clients bound to a running stack (topics and subscriptions set up).
        out: Where to print (print by default).
        timeout: Seconds to wait for each batch of expected outcomes.
        account: The account attribute of every intent (None: no attribute).

    Returns:
        Problems found; empty means every expected outcome arrived and nothing extra did.
    """
    run = DemoRun(pubsub, out, timeout, {"account": account} if account else {})
    prefix = f"demo-{uuid.uuid4().hex[:8]}"
    for key, step in ((f"{prefix}-summary", SUMMARY), (f"{prefix}-order", PLACE_ORDER)):
        run.publish(key, step)
        run.wait()
    # Published after the first outcomes, so each duplicate meets a finished key.
    run.publish(f"{prefix}-summary", SUMMARY)
    run.publish(f"{prefix}-order", PLACE_ORDER)
    for i, step in enumerate(demo_steps()):
        run.publish(f"{prefix}-{i}", step)
    run.wait()
    run.listen(QUIET_PERIOD_S)
    return run.problems()


def check_outcomes(expected: dict[str, Step], outcomes: list[Outcome], timeout: float) -> list[str]:
    """Compare outcomes with the expected steps, keyed by the data's idempotency_key.

    Each key must have exactly one distinct event id (a replayed duplicate repeats the id) of
    an expected kind, with the expected leg status if the step names one, and no outcome may
    carry a key nobody published.
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
    legs = holder.get("legs") if isinstance(holder, dict) else None
    return [leg for leg in legs if isinstance(leg, dict)] if isinstance(legs, list) else []


def describe_leg(leg: Mapping[str, Any]) -> str:
    """One line for an order leg: its id, then order_ref, status, filled, avg_price, commission."""
    facts = "  ".join(f"{name}={leg.get(name)}" for name in LEG_FIELDS)
    return f"          leg {leg.get('leg_id')}  {facts}"


def _data(outcome: Outcome) -> dict[str, Any]:
    return outcome.data if isinstance(outcome.data, dict) else {}


def _key_of(outcome: Outcome) -> str:
    return str(_data(outcome).get("idempotency_key", ""))


def outcome_printer(out: Callable[[str], None]) -> Callable[[Outcome], None]:
    """Return a callback that prints each outcome through `out`: its summary, one line per leg."""

    def show(outcome: Outcome) -> None:
        out("<- outcome " + describe_outcome(outcome))
        for leg in outcome_legs(outcome):
            out(describe_leg(leg))

    return show
