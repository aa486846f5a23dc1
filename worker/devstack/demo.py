"""The local demo: publish a few intents through the real push path and print their outcomes.

What it shows, in order: a `summary` that succeeds; the same message again with the same
idempotency_key, which must not yield a second distinct outcome event; an unknown intent and a
`summary` with invalid params, both acked and reported as failed/rejected outcomes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from worker.devstack.pubsub_setup import LocalPubSub, Outcome, describe_outcome

OUTCOME_TIMEOUT_S = 60.0
# After the last expected outcome, how long to keep listening for events that must NOT come
# (a second outcome for the duplicate). Absence has no event to wait on, so this is a bound.
QUIET_PERIOD_S = 3.0
PERMANENT_FAILURE = frozenset({"failed", "rejected"})


@dataclass(frozen=True)
class Step:
    """One intent to publish and the outcome it should produce."""

    label: str
    intent: str
    params: object
    kinds: frozenset[str]


def demo_steps() -> list[Step]:
    """Return the intents the demo publishes after the first summary."""
    return [
        Step("unknown intent", "no_such_intent", {}, PERMANENT_FAILURE),
        # params must be an object; a list fails validation whatever the summary model is.
        Step("invalid params", "summary", ["not", "an", "object"], PERMANENT_FAILURE),
    ]


def run_demo(pubsub: LocalPubSub, out: Callable[[str], None] = print) -> list[str]:
    """Publish the demo intents, print outcomes as they arrive, and check them.

    Args:
        pubsub: Clients bound to a running stack (topics and subscriptions set up).
        out: Where to print (print by default).

    Returns:
        Problems found; empty means every expected outcome arrived and nothing extra did.
    """
    show = _printer(out)
    run = uuid.uuid4().hex[:8]
    problems: list[str] = []
    key = f"demo-summary-{run}"
    out(f"-> publish summary (idempotency_key={key})")
    pubsub.publish_intent("summary", {}, {"idempotency_key": key})
    first = pubsub.pull_outcomes(OUTCOME_TIMEOUT_S, 1, show)
    problems += _check("summary", first, frozenset({"succeeded"}))
    out(f"-> publish the same summary again (same idempotency_key={key})")
    pubsub.publish_intent("summary", {}, {"idempotency_key": key})
    steps = demo_steps()
    for i, step in enumerate(steps):
        out(f"-> publish {step.label}: intent={step.intent!r} params={step.params!r}")
        pubsub.publish_raw(_envelope(step), {"idempotency_key": f"demo-{run}-{i}"})
    rest = pubsub.pull_outcomes(OUTCOME_TIMEOUT_S, len(steps), show)
    rest += pubsub.pull_outcomes(QUIET_PERIOD_S, 10, show)
    problems += _check_rest(first, rest, steps)
    return problems


def _envelope(step: Step) -> bytes:
    return json.dumps({"intent": step.intent, "params": step.params}).encode()


def _printer(out: Callable[[str], None]) -> Callable[[Outcome], None]:
    def show(outcome: Outcome) -> None:
        out("<- outcome " + describe_outcome(outcome))

    return show


def _check(label: str, got: list[Outcome], kinds: frozenset[str]) -> list[str]:
    if not got:
        return [f"{label}: no outcome event arrived within {OUTCOME_TIMEOUT_S:.0f}s"]
    if got[0].kind not in kinds:
        return [f"{label}: expected {'/'.join(sorted(kinds))}, got {got[0].type}"]
    return []


def _check_rest(first: list[Outcome], rest: list[Outcome], steps: list[Step]) -> list[str]:
    problems = []
    first_ids = {o.id for o in first}
    # The duplicate may replay the stored event (same id); a new id would be a second outcome.
    fresh = [o for o in rest if o.id not in first_ids]
    summaries = [o for o in fresh if o.subject == "summary" and o.kind == "succeeded"]
    if summaries:
        problems.append(f"duplicate summary produced a second outcome: id={summaries[0].id}")
    failures = [o for o in fresh if o.kind in PERMANENT_FAILURE]
    if len(failures) != len(steps):
        labels = ", ".join(s.label for s in steps)
        problems.append(
            f"expected {len(steps)} failed/rejected outcomes ({labels}), got {len(failures)}"
        )
    return problems
