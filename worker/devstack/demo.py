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
    """One intent to publish and the outcome kinds it may produce."""

    label: str
    intent: str
    params: object
    kinds: frozenset[str]


def demo_steps() -> list[Step]:
    """Return the intents the demo publishes after the first summary."""
    return [
        Step("unknown intent", "no_such_intent", {}, PERMANENT_FAILURE),
        # summary.sections is a list of section names; a number fails validation.
        Step("invalid params", "summary", {"sections": 5}, PERMANENT_FAILURE),
    ]


def run_demo(
    pubsub: LocalPubSub,
    out: Callable[[str], None] = print,
    timeout: float = OUTCOME_TIMEOUT_S,
) -> list[str]:
    """Publish the demo intents, print outcomes as they arrive, and check them.

    Args:
        pubsub: Clients bound to a running stack (topics and subscriptions set up).
        out: Where to print (print by default).
        timeout: Seconds to wait for each batch of expected outcomes.

    Returns:
        Problems found; empty means every expected outcome arrived and nothing extra did.
    """
    show = outcome_printer(out)
    run = uuid.uuid4().hex[:8]
    first = Step("summary", "summary", {}, frozenset({"succeeded"}))
    expected = {f"demo-{run}-summary": first}
    out(f"-> publish summary (idempotency_key=demo-{run}-summary)")
    pubsub.publish_intent("summary", {}, {"idempotency_key": f"demo-{run}-summary"})
    outcomes = pubsub.pull_outcomes(timeout, 1, show)
    # Published after the first outcome, so the duplicate meets a finished key.
    out(f"-> publish the same summary again (same idempotency_key=demo-{run}-summary)")
    pubsub.publish_intent("summary", {}, {"idempotency_key": f"demo-{run}-summary"})
    for i, step in enumerate(demo_steps()):
        key = f"demo-{run}-{i}"
        expected[key] = step
        out(f"-> publish {step.label}: intent={step.intent!r} params={step.params!r}")
        pubsub.publish_raw(_envelope(step), {"idempotency_key": key})
    outcomes += pubsub.pull_outcomes(timeout, len(expected) - len(outcomes), show)
    outcomes += pubsub.pull_outcomes(QUIET_PERIOD_S, 10, show)
    return check_outcomes(expected, outcomes, timeout)


def check_outcomes(expected: dict[str, Step], outcomes: list[Outcome], timeout: float) -> list[str]:
    """Compare outcomes with the expected steps, keyed by the data's idempotency_key.

    Each key must have exactly one distinct event id (a replayed duplicate repeats the id) of
    an expected kind, and no outcome may carry a key nobody published.
    """
    by_key: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_key.setdefault(_key_of(outcome), []).append(outcome)
    problems = [f"unexpected outcome for key {k!r}" for k in by_key if k not in expected]
    for key, step in expected.items():
        got = by_key.get(key, [])
        ids = {o.id for o in got}
        if not got:
            problems.append(f"{step.label}: no outcome event arrived within {timeout:.0f}s")
        elif len(ids) > 1:
            problems.append(f"{step.label}: {len(ids)} distinct outcome events for one key")
        elif got[0].kind not in step.kinds:
            want = "/".join(sorted(step.kinds))
            problems.append(f"{step.label}: expected {want}, got {got[0].kind}")
    return problems


def _key_of(outcome: Outcome) -> str:
    data = outcome.data if isinstance(outcome.data, dict) else {}
    return str(data.get("idempotency_key", ""))


def _envelope(step: Step) -> bytes:
    return json.dumps({"intent": step.intent, "params": step.params}).encode()


def outcome_printer(out: Callable[[str], None]) -> Callable[[Outcome], None]:
    """Return a callback that prints each outcome through `out` in readable form."""

    def show(outcome: Outcome) -> None:
        out("<- outcome " + describe_outcome(outcome))

    return show
