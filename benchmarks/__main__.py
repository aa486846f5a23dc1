"""``make bench``: time the hot paths against their targets and report.

Targets are for this project's 2-core machines; each line says PASS or MISS and the command
exits 1 if any target is missed. Everything runs on loopback and stops by itself.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from worker import edge

# name -> (target, unit); p50 latencies unless the name says otherwise.
TARGETS = {
    "edge.decode wrapped push": (200.0, "us"),
    "edge.decode peak memory, 1 MB body": (12.0, "MiB"),
    "ib session round trip (reqExecutions)": (50.0, "ms"),
    "firestore claim (emulator)": (15.0, "ms"),
    "read-only run record: claim+finish+published": (40.0, "ms"),
}


def p50(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_edge(runs: int) -> dict[str, float]:
    data = base64.b64encode(json.dumps({"intent": "summary", "params": {}}).encode()).decode()
    body = json.dumps({"message": {"data": data, "messageId": "1", "attributes": {}}}).encode()
    headers = {"Content-Type": "application/json"}
    latency = p50(lambda: edge.decode(headers, body), runs) * 1e6
    big = json.dumps({"message": {"data": "A" * 1_000_000, "messageId": "2"}}).encode()
    tracemalloc.start()
    edge.decode(headers, big)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"edge.decode wrapped push": latency, "edge.decode peak memory, 1 MB body": peak}


def bench_session(runs: int) -> dict[str, float]:
    import ibsim
    from worker.broker.session import BrokerSession

    with ibsim.run_in_thread() as sim:
        session = BrokerSession(sim.host, sim.port, 21, connect_timeout=5)
        session.start()
        session.wait_ready(15)
        try:

            def round_trip() -> object:
                return session.call(lambda gw: gw.executions("DU1234567"), timeout=10)

            return {"ib session round trip (reqExecutions)": p50(round_trip, runs) * 1e3}
        finally:
            session.stop()


def bench_firestore(runs: int) -> dict[str, float]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    from worker import outcomes
    from worker.devstack.emulators import start_emulators
    from worker.runs import RunStore, fingerprint, now

    emulators = start_emulators(Path(tempfile.mkdtemp(prefix="bench-")))
    try:
        os.environ.update(emulators.env())  # the client finds the emulator through these
        client = firestore.Client(project=emulators.project, credentials=AnonymousCredentials())
        store = RunStore(client, "bench_runs", "bench", 30, timedelta(days=1))
        fp = fingerprint("summary", {}, None, False)
        keys = iter(range(2 * runs))

        def claim() -> object:
            return store.claim(f"k{next(keys)}", fp, "summary", "bench")

        def cycle() -> None:
            # The three writes a read-only intent costs (decisions.md: aim at 3 round trips).
            claimed = store.claim(f"c{next(keys)}", fp, "summary", "bench")
            stored = outcomes.build(
                event_id=claimed.doc_id, outcome="succeeded", source="/b", subject="summary",
                time=now(), data={"result": {}},
            )  # fmt: skip
            claimed.lease.finish(stored)
            store.mark_published(claimed.doc_id)

        return {
            "firestore claim (emulator)": p50(claim, runs) * 1e3,
            "read-only run record: claim+finish+published": p50(cycle, runs) * 1e3,
        }
    finally:
        emulators.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    results: dict[str, float] = {}
    for bench in (bench_edge, bench_session, bench_firestore):
        results.update(bench(args.runs))
    missed = 0
    for name, value in results.items():
        target, unit = TARGETS[name]
        ok = value <= target
        missed += not ok
        verdict = "PASS" if ok else "MISS"
        print(f"{verdict}  {name:<46} {value:9.2f} {unit:<4} (target {target} {unit})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
