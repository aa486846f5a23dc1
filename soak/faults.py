"""One injector per fault kind, and what each one models in production.

Every injector gets the batch's ``Batch`` handle and its ``FaultSpec`` and returns an
``Injection`` saying whether (and when) the fault actually struck: a triggered fault whose
moment never came (the run it waits for placed no order) is reported as not injected rather
than counted. Each injector undoes its own switches; ``heal`` then resets everything anyway.

Process and stores (what happens to a Cloud Run instance and the services it uses):

- ``kill_random``: SIGKILL of the worker's gunicorn (master and worker) at a random moment of
  the batch, then a restart. Cloud Run killing an instance (OOM, scale-in, host failure).
- ``kill_instance``: SIGKILL of the worker, and while it is down the gateway restarts with its
  nextValidId rolled back. On Cloud Run the gateway lives in the instance: an instance that
  dies takes its gateway along, and a fresh gateway has been seen to start its ids lower.
- ``kill_after_send``: SIGKILL right after ibsim holds the target's order, before the worker
  heard back (ibsim withholds the acknowledgement, fills are frozen, the soak polls ibsim's open
  orders through its own connection): the leg is journalled ``planned``, never ``sent``. The
  instance dies between the order leaving and the journal write.
- ``kill_before_publish``: the worker's link to Pub/Sub hangs, and the worker is SIGKILLed once
  a record of the batch is FINISHED but unpublished: death between the finishing write and the
  publish. The next delivery must publish the stored outcome (after the 20 s grace).
- ``freeze_takeover``: the worker is frozen (SIGSTOP) while the target run holds its lease (its
  leg ``planned`` or ``sent``), the gateway drops its connection, a second instance with the
  same clientId starts and gets the key's redelivery after the lease expired: a takeover. Then
  the second instance stops and the first resumes (SIGCONT) and must send nothing. A paused VM,
  a long GC pause, or Cloud Run overlapping two instances of a revision.
- ``firestore_restart``: Firestore away for a restart that keeps every acknowledged write (the
  worker's connections are cut; the emulator is exported, stopped and restarted with the data).
- ``firestore_stall``: Firestore unresponsive for seconds (the worker's link freezes).
- ``publish_failure``: the worker's publishes hang past the 10 s publish timeout (PublishFailed,
  503); the held bytes are delivered afterwards, as a publish that timed out may still land.

Gateway (ibsim's fault modes, through its control endpoint): ``drop_all`` (gateway crash or
network loss), ``blip_1101`` / ``blip_1102`` (IB's servers away; market data lost / kept),
``restart`` (the nightly IBC restart, state kept), ``restart_rollback`` (a restart after which
nextValidId moved backwards), ``withhold_end`` (an end marker that does not come for seconds).

Delivery (Pub/Sub): ``dup_sequential`` (the same message published again while the run is in
flight and after its outcome: a publisher retry, a Scheduler retry, a redelivery after an ack
was lost) and ``dup_concurrent`` (several copies at once: redeliveries racing each other).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from soak.probe import BrokerProbe
from soak.schedule import BatchPlan, FaultSpec, RunSpec
from soak.stack import DEPLOYMENT, WORKER_SETTINGS, SoakStack
from tests.worker.pushes import JSON, push_body
from worker.devstack.processes import http_status
from worker.journal import order_ref

POLL_S = 0.05
TRIGGER_WAIT_S = 12.0  # how long a triggered fault waits for its moment
PUBLISH_HANG_S = 11.0  # past the worker's 10 s publish timeout (worker/outcomes.py)
LEASE_S = float(WORKER_SETTINGS["LEASE_SECONDS"])
READY_WAIT_S = 60.0


@dataclass
class Injection:
    """What a fault did: kind, whether it struck, when (monotonic), and a note."""

    kind: str
    injected: bool = False
    started: float = 0.0
    ended: float = 0.0
    note: str = ""


@dataclass
class Batch:
    """What injectors may touch during one batch."""

    stack: SoakStack
    probe: BrokerProbe
    plan: BatchPlan
    outcome_at: Callable[[str], float | None]
    published_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    struck: threading.Event = field(default_factory=threading.Event)

    def run(self, spec: FaultSpec) -> RunSpec:
        return self.plan.runs[spec.target]

    def publish(self, run: RunSpec) -> None:
        self.stack.pubsub.publish_intent(run.intent, run.params, {"idempotency_key": run.key})

    def sleep_until(self, delay: float) -> None:
        """Sleep until ``delay`` seconds after the batch's publish."""
        time.sleep(max(0.0, self.published_at + delay - time.monotonic()))

    def wait(
        self, condition: Callable[[], Any], timeout: float = TRIGGER_WAIT_S, patient: bool = False
    ) -> Any:
        """Poll ``condition`` until truthy or ``timeout``, or (unless ``patient``) until the
        batch's runs all have outcomes; the condition's last value."""
        deadline = time.monotonic() + timeout
        while not (value := condition()) and time.monotonic() < deadline:
            if self.done.is_set() and not patient:
                return value
            time.sleep(POLL_S)
        return value


# -- helpers -----------------------------------------------------------------------------
def _leg_state(batch: Batch, key: str, leg: str = "order") -> str | None:
    record = batch.stack.record(key) or {}
    return (record.get("legs") or {}).get(leg, {}).get("state")


def _restart_worker(batch: Batch) -> None:
    """Kill (if alive) and start the primary instance again; route pushes back to it."""
    stack = batch.stack
    stack.router.route_to(None)
    if stack.worker.running():
        stack.worker.kill()
    stack.worker.start()
    stack.router.route_to(stack.worker.url)


def _strike(batch: Batch) -> float:
    """A triggered fault's moment came: note it (the batch's gateway fault waits for it)."""
    batch.struck.set()
    return time.monotonic()


def _struck(kind: str, started: float, note: str = "") -> Injection:
    return Injection(kind, True, started, time.monotonic(), note)


# -- process and stores ------------------------------------------------------------------
def kill_random(batch: Batch, spec: FaultSpec) -> Injection:
    batch.sleep_until(spec.delay)
    started = time.monotonic()
    _restart_worker(batch)
    return _struck(spec.kind, started, f"at +{spec.delay}s")


def kill_instance(batch: Batch, spec: FaultSpec) -> Injection:
    batch.sleep_until(spec.delay)
    started = time.monotonic()
    batch.stack.router.route_to(None)
    batch.stack.worker.kill()
    batch.stack.ibsim_fault("restart-rollback-ids", "1", spec.args[0])
    _restart_worker(batch)
    return _struck(spec.kind, started, f"at +{spec.delay}s, ids rolled back by {spec.args[0]}")


def arm_kill_after_send(batch: Batch, spec: FaultSpec) -> None:
    batch.stack.ibsim_fault("freeze-fills")
    batch.stack.ibsim_fault("delay-order-ack", "5")


def kill_after_send(batch: Batch, spec: FaultSpec) -> Injection:
    key = batch.run(spec).key
    prefix = order_ref(DEPLOYMENT, key, "")  # ibw:<hash of the key>: (any leg of it)

    def arrived() -> bool:
        try:
            return any(o.order_ref.startswith(prefix) for o in batch.probe.open_orders())
        except (OSError, TimeoutError, ConnectionError):
            return False

    try:
        if not batch.wait(arrived):
            return Injection(spec.kind, note=f"no order of {key} reached ibsim in time")
        started = _strike(batch)
        batch.stack.router.route_to(None)
        batch.stack.worker.kill()
        note = f"{key}: order at ibsim, journal said {_leg_state(batch, key)!r} at the kill"
    finally:
        batch.stack.ibsim_fault("delay-order-ack", "0")
        batch.stack.ibsim_fault("unfreeze-fills")
    _restart_worker(batch)
    return _struck(spec.kind, started, note)


def arm_kill_before_publish(batch: Batch, spec: FaultSpec) -> None:
    batch.stack.ps_proxy.freeze()


def kill_before_publish(batch: Batch, spec: FaultSpec) -> Injection:
    keys = [r.key for r in batch.plan.runs]

    def finished_unpublished() -> str | None:
        for key in keys:
            record = batch.stack.record(key) or {}
            if record.get("state") not in (None, "RUNNING") and not record.get("published"):
                return key
        return None

    key = batch.wait(finished_unpublished, 2 * TRIGGER_WAIT_S)
    if key is None:
        batch.stack.ps_proxy.restore()
        return Injection(spec.kind, note="no record finished in time")
    started = _strike(batch)
    batch.stack.router.route_to(None)
    batch.stack.worker.kill()
    batch.stack.ps_proxy.cut()  # the dead instance's publish never arrives
    batch.stack.ps_proxy.restore()
    _restart_worker(batch)
    return _struck(spec.kind, started, f"{key}: FINISHED, unpublished at the kill")


def arm_freeze_takeover(batch: Batch, spec: FaultSpec) -> None:
    if spec.args[0] == "sent":
        batch.stack.ibsim_fault("freeze-fills")  # the run waits for fills holding its lease
    else:
        batch.stack.ibsim_fault("delay-order-ack", "4")  # it waits for the acknowledgement


def freeze_takeover(batch: Batch, spec: FaultSpec) -> Injection:
    run, state = batch.run(spec), spec.args[0]
    try:
        if not batch.wait(lambda: _leg_state(batch, run.key) == state):
            return Injection(spec.kind, note=f"{run.key} never had its leg {state}")
        started = _strike(batch)
        attempt = int((batch.stack.record(run.key) or {}).get("attempt", 1))
        note = _take_over(batch, run, attempt)
    finally:
        batch.stack.ibsim_fault("delay-order-ack", "0")
        batch.stack.ibsim_fault("unfreeze-fills")
    return _struck(spec.kind, started, f"{run.key} frozen with its leg {state}; {note}")


def _take_over(batch: Batch, run: RunSpec, attempt: int) -> str:
    """Freeze the holder, hand its clientId to a second instance, redeliver, then thaw."""
    stack = batch.stack
    stack.router.route_to(None)
    stack.worker.signal(signal.SIGSTOP)
    stack.router.abandon(stack.worker.url)  # Pub/Sub stops waiting for the frozen instance
    try:
        stack.ibsim_fault("drop-all")  # the frozen holder's gateway connection goes away
        stack.router.route_to(stack.start_standby().url)
        time.sleep(max(0.0, LEASE_S - 1.0))
        batch.publish(run)  # the redelivery the second instance takes over
        taken = batch.wait(lambda: _attempt(batch, run.key) > attempt, 4 * TRIGGER_WAIT_S, True)
    finally:
        stack.router.route_to(None)
        stack.stop_standby()
        stack.worker.signal(signal.SIGCONT)
    _await_ready(batch)
    return "taken over by the second instance" if taken else "no takeover seen"


def _attempt(batch: Batch, key: str) -> int:
    return int((batch.stack.record(key) or {}).get("attempt", 0))


def _await_ready(batch: Batch) -> None:
    """Route to the primary once it answers /readyz (restart it if it cannot)."""
    stack = batch.stack
    ready = batch.wait(
        lambda: http_status(stack.worker.url + "/readyz") == 200, READY_WAIT_S, patient=True
    )
    if not ready:
        _restart_worker(batch)
    stack.router.route_to(stack.worker.url)


def firestore_restart(batch: Batch, spec: FaultSpec) -> Injection:
    batch.sleep_until(spec.delay)
    started = time.monotonic()
    batch.stack.restart_firestore()
    return _struck(spec.kind, started, f"at +{spec.delay}s")


def firestore_stall(batch: Batch, spec: FaultSpec) -> Injection:
    batch.sleep_until(spec.delay)
    started = time.monotonic()
    batch.stack.fs_proxy.freeze()
    time.sleep(float(spec.args[0]))
    batch.stack.fs_proxy.restore()
    return _struck(spec.kind, started, f"{spec.args[0]}s at +{spec.delay}s")


def publish_failure(batch: Batch, spec: FaultSpec) -> Injection:
    delay = min(spec.delay, 0.5)  # while the batch's runs are finishing
    batch.sleep_until(delay)
    started = time.monotonic()
    batch.stack.ps_proxy.freeze()
    time.sleep(PUBLISH_HANG_S)
    batch.stack.ps_proxy.restore()
    return _struck(spec.kind, started, f"{PUBLISH_HANG_S:.0f}s from +{delay}s")


# -- the gateway -------------------------------------------------------------------------
def _gateway(mode: str, *fixed: str) -> Callable[[Batch, FaultSpec], Injection]:
    def inject(batch: Batch, spec: FaultSpec) -> Injection:
        batch.sleep_until(spec.delay)
        started = time.monotonic()
        args = [*fixed, *spec.args]
        batch.stack.ibsim_fault(mode, *args)
        return _struck(spec.kind, started, f"{mode} {' '.join(args)} at +{spec.delay}s")

    return inject


def withhold_end(batch: Batch, spec: FaultSpec) -> Injection:
    marker, seconds = spec.args
    batch.sleep_until(spec.delay)
    started = time.monotonic()
    batch.stack.ibsim_fault("withhold-end", marker)
    time.sleep(float(seconds))
    batch.stack.ibsim_fault("release-ends")
    return _struck(spec.kind, started, f"{marker} for {seconds}s at +{spec.delay}s")


# -- delivery ----------------------------------------------------------------------------
def dup_sequential(batch: Batch, spec: FaultSpec) -> Injection:
    """One copy while the run is in flight, then ``n`` after its outcome, one at a time."""
    run = batch.run(spec)
    batch.sleep_until(min(spec.delay, 1.0))
    started = time.monotonic()
    batch.publish(run)
    batch.wait(lambda: batch.outcome_at(run.key) is not None, 120.0, patient=True)
    for _ in range(int(spec.args[0])):
        batch.publish(run)
        time.sleep(0.3)
    return _struck(spec.kind, started, f"{run.key}: 1 copy in flight, {spec.args[0]} after")


def dup_concurrent(batch: Batch, spec: FaultSpec) -> Injection:
    """``n`` copies published at once and ``n`` pushed straight to the push endpoint at the
    same moment (the emulator pushes two at a time; these race the original for real)."""
    run, copies = batch.run(spec), int(spec.args[0])
    started = time.monotonic()
    threads = [threading.Thread(target=batch.publish, args=(run,)) for _ in range(copies)]
    threads += [
        threading.Thread(target=_push_directly, args=(batch, run, f"direct-{run.key}-{i}"))
        for i in range(copies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return _struck(spec.kind, started, f"{run.key}: {copies} published + {copies} pushed at once")


def _push_directly(batch: Batch, run: RunSpec, message_id: str) -> None:
    """One wrapped push delivery of ``run`` to the router, answered however it is (the
    published original is retried by Pub/Sub until it is acked)."""
    envelope = {"intent": run.intent, "params": run.params}
    body = push_body(envelope, message_id, {"idempotency_key": run.key})
    batch.stack.router.forward("/", dict(JSON), body)


INJECTORS: dict[str, Callable[[Batch, FaultSpec], Injection]] = {
    "kill_random": kill_random,
    "kill_instance": kill_instance,
    "kill_after_send": kill_after_send,
    "kill_before_publish": kill_before_publish,
    "freeze_takeover": freeze_takeover,
    "firestore_restart": firestore_restart,
    "firestore_stall": firestore_stall,
    "publish_failure": publish_failure,
    "drop_all": _gateway("drop-all"),
    "blip_1101": _gateway("connectivity-blip", "1101"),
    "blip_1102": _gateway("connectivity-blip", "1102"),
    "restart": _gateway("restart", "keep"),
    "restart_rollback": _gateway("restart-rollback-ids", "1"),
    "withhold_end": withhold_end,
    "dup_sequential": dup_sequential,
    "dup_concurrent": dup_concurrent,
}
# Switches set before the batch is published, so the fault's moment can be caught.
ARMERS: dict[str, Callable[[Batch, FaultSpec], None]] = {
    "kill_after_send": arm_kill_after_send,
    "kill_before_publish": arm_kill_before_publish,
    "freeze_takeover": arm_freeze_takeover,
}


def heal(batch: Batch) -> None:
    """Every switch back to normal and the primary instance serving (end of a batch)."""
    stack = batch.stack
    stack.stop_standby()
    stack.fs_proxy.restore()
    stack.ps_proxy.restore()
    stack.ibsim_fault("clear")
    stack.worker.signal(signal.SIGCONT)
    if not stack.worker.running():
        _restart_worker(batch)
    _await_ready(batch)
