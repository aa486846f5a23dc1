"""The soak's loop: for each batch, arm, publish, inject, await the outcomes, heal.

Faults run on threads of their own (one per family), so a gateway drop can land during a worker
restart as it can in production; every wait is bounded, and ``heal`` puts every switch back
before the next batch. After the last batch the harness waits for outcomes still on their way,
listens a little longer for outcomes that must not come, and gathers what the reconciler needs
from each side: the broker (our own connection), the journal (Firestore), the outcome events,
the dead-letter topic and the BigQuery fake.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from soak import faults
from soak.collector import OutcomeCollector, Seen, drain
from soak.faults import Batch, Injection
from soak.probe import BrokerOrder, BrokerProbe
from soak.schedule import GATEWAY, TRIGGERED, BatchPlan, FaultSpec, RunSpec
from soak.stack import SoakStack
from worker.names import names

BATCH_DEADLINE_S = 150.0  # a batch's outcomes, after its publish
FAULT_JOIN_S = 180.0  # an injector's own bounded waits end well before this
TAIL_WAIT_S = 90.0  # after the last batch, for outcomes still on their way
QUIET_S = 5.0  # then for outcomes that must not come (a second one for a key)
STRUCK_WAIT_S = 60.0  # a gateway fault waits this long at most for a triggered one
FIRST_BATCH_GUESS_S = 40.0  # the duration budget's estimate before any batch ran
log = logging.getLogger("soak")


@dataclass
class RunRecord:
    """One run as the harness saw it (monotonic times)."""

    spec: RunSpec
    batch: int
    published_at: float
    outcome_at: float | None = None


@dataclass
class Evidence:
    """What each side holds at the end, for the reconciler."""

    broker: list[BrokerOrder]
    records: dict[str, dict[str, Any] | None]
    outcomes: list[Seen]
    dead_letters: list[str]
    bigquery_ids: list[str]


@dataclass
class SoakResult:
    """The runs, the faults as injected, the evidence and the time taken."""

    runs: list[RunRecord] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)
    evidence: Evidence | None = None
    seconds: float = 0.0
    stopped_early: str = ""
    push_answers: dict[int, int] = field(default_factory=dict)

    def hit(self, run: RunRecord) -> bool:
        """Whether a fault struck while ``run`` was in flight."""
        end = run.outcome_at if run.outcome_at is not None else float("inf")
        return any(i.injected and i.started <= end and i.ended >= run.published_at
                   for i in self.injections)  # fmt: skip


def _triggered(plan: BatchPlan) -> bool:
    return any(f.kind in TRIGGERED for f in plan.faults)


class Harness:
    """Runs a plan against a started ``SoakStack`` within a duration budget."""

    def __init__(
        self,
        stack: SoakStack,
        plan: list[BatchPlan],
        duration: float,
        progress: Callable[[str], None] = print,
    ) -> None:
        self.stack, self.plan, self.duration = stack, plan, duration
        self.progress = progress
        self.result = SoakResult()
        self.collector = OutcomeCollector(stack.pubsub)
        self.probe = BrokerProbe(stack.ibsim.host, stack.ibsim.port)

    def run(self) -> SoakResult:
        """Every batch the budget allows, then the tail and the evidence."""
        began = time.monotonic()
        self.collector.start()
        self.probe.start()
        try:
            for plan in self.plan:
                if self._out_of_time(began, plan.index):
                    break
                self._batch(plan)
            self._tail()
            self.result.evidence = self._evidence()
        finally:
            self.collector.stop()
            self.probe.close()
        self.result.seconds = time.monotonic() - began
        self.result.push_answers = dict(self.stack.router.answers)
        self.stack.router.write_journal(self.stack.run_dir / "pushes.log")
        self._write_faults(began)
        return self.result

    def _out_of_time(self, began: float, index: int) -> bool:
        spent = time.monotonic() - began
        per_batch = spent / index if index else FIRST_BATCH_GUESS_S
        if spent + per_batch <= self.duration:
            return False
        done = sum(len(p.runs) for p in self.plan[:index])
        self.result.stopped_early = f"duration bound {self.duration:.0f}s reached after {done} runs"
        self.progress(f"soak: {self.result.stopped_early}")
        return True

    # -- one batch --------------------------------------------------------------------------
    def _batch(self, plan: BatchPlan) -> None:
        self.stack.set_config(plan.overall)
        batch = Batch(self.stack, self.probe, plan, self.collector.first_at)
        for spec in plan.faults:
            armer = faults.ARMERS.get(spec.kind)
            if armer is not None:
                armer(batch, spec)
        batch.published_at = time.monotonic()
        records = [self._publish(batch, run, plan.index) for run in plan.runs]
        threads = [self._inject(batch, spec) for spec in plan.faults]
        missing = self.collector.wait_for(
            [r.spec.key for r in records], batch.published_at + BATCH_DEADLINE_S
        )
        batch.done.set()
        for thread in threads:
            thread.join(FAULT_JOIN_S)
        faults.heal(batch)
        self._report_batch(plan, records, missing, time.monotonic() - batch.published_at)

    def _publish(self, batch: Batch, run: RunSpec, index: int) -> RunRecord:
        batch.publish(run)
        record = RunRecord(run, index, time.monotonic())
        self.result.runs.append(record)
        return record

    def _inject(self, batch: Batch, spec: FaultSpec) -> threading.Thread:
        def inject() -> None:
            if spec.kind in GATEWAY and _triggered(batch.plan):
                batch.struck.wait(STRUCK_WAIT_S)  # so it cannot spoil the trigger's moment
            try:
                injection = faults.INJECTORS[spec.kind](batch, spec)
            except Exception as exc:  # a harness failure must not hide the others
                log.error("fault %s failed:\n%s", spec.kind, traceback.format_exc())
                injection = Injection(spec.kind, note=f"injector failed: {exc!r}")
            finally:
                if spec.kind in TRIGGERED:
                    batch.struck.set()  # gave up, or failed: the gateway fault goes ahead
            self.result.injections.append(injection)

        thread = threading.Thread(target=inject, name=f"fault-{spec.kind}", daemon=True)
        thread.start()
        return thread

    def _report_batch(
        self, plan: BatchPlan, records: list[RunRecord], missing: set[str], took: float
    ) -> None:
        kinds = ", ".join(f.kind for f in plan.faults)
        lost = f", no outcome yet: {sorted(missing)}" if missing else ""
        self.progress(f"batch {plan.index + 1}/{len(self.plan)} ({kinds}) {took:.1f}s{lost}")

    def _write_faults(self, began: float) -> None:
        """faults.log: each injection, when it struck (seconds into the soak) and for how long."""
        lines = [
            f"{i.started - began:9.1f}s {i.ended - i.started:6.1f}s {i.kind:<20} "
            f"{'struck' if i.injected else 'missed'}  {i.note}"
            for i in sorted(self.result.injections, key=lambda i: i.started or float("inf"))
        ]
        (self.stack.run_dir / "faults.log").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # -- the end --------------------------------------------------------------------------
    def _tail(self) -> None:
        keys = [r.spec.key for r in self.result.runs]
        missing = self.collector.wait_for(keys, time.monotonic() + TAIL_WAIT_S)
        if missing:
            self.progress(f"soak: no outcome after the tail for {sorted(missing)}")
        time.sleep(QUIET_S)
        for run in self.result.runs:
            run.outcome_at = self.collector.first_at(run.spec.key)

    def _evidence(self) -> Evidence:
        keys = [r.spec.key for r in self.result.runs]
        return Evidence(
            broker=self._broker_orders(),
            records={key: self.stack.record(key) for key in keys},
            outcomes=self.collector.seen(),
            dead_letters=self._dead_letters(),
            bigquery_ids=self._bigquery_ids(),
        )

    def _broker_orders(self) -> list[BrokerOrder]:
        for attempt in range(5):
            try:
                return self.probe.all_orders()
            except (OSError, TimeoutError, ConnectionError) as exc:
                self.progress(f"soak: broker query failed ({exc!r}), attempt {attempt + 1}")
                time.sleep(2)
        return self.probe.all_orders()

    def _dead_letters(self) -> list[str]:
        got = drain(self.stack.pubsub, self.stack.names.dead_letter_subscription)
        return [str(m.message.attributes.get("idempotency_key", "")) for m in got]

    def _bigquery_ids(self) -> list[str]:
        dataset = names()["bigquery"]["dataset"]
        rows = self.stack.bigquery.rows(dataset, "intent_outcomes", project=self.stack.project)
        return [str(row["event_id"]) for row in rows]
