"""``python -m soak --runs N --seed S --duration SECONDS``: run a soak and print its report.

Exit status: 0 when every run has exactly one outcome and no leg was duplicated or lost; 1 on
any duplicate, lost leg, missing or extra outcome (or BigQuery row, or a port left open); 2
when the duration bound stopped the soak before all its runs (the report says how far it got).
Progress goes to stderr, the report to stdout; child logs stay in the run directory.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from soak import schedule
from soak.harness import Harness
from soak.reconcile import reconcile
from soak.report import Report, render
from soak.stack import DEPLOYMENT, SoakStack
from worker.devstack.processes import sigterm_as_interrupt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs to publish (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the plan (default 1)")
    parser.add_argument(
        "--duration", type=float, default=1800.0, help="time budget in seconds (default 1800)"
    )
    parser.add_argument("--batch-size", type=int, default=4, help="runs at once (default 4)")
    parser.add_argument("--run-dir", type=Path, help="logs of every process (default: temp)")
    parser.add_argument("--show-plan", action="store_true", help="print the plan and exit")
    parser.add_argument(
        "--only", default="", help="comma-separated fault kinds to inject (default: all)"
    )
    parser.add_argument(
        "--format",
        choices=("auto", "plain", "rich"),
        default="auto",
        help="the report's table: rich's when installed (auto), or plain text",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    only = frozenset(k for k in args.only.split(",") if k) or None
    plan = schedule.build(args.seed, args.runs, args.batch_size, only)
    if args.show_plan:
        print(schedule.describe(plan))
        return 0
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # the probe's drops are expected
    report = run_soak(plan, args, _command(args))
    print(render(report, args.format))
    return report.exit_code()


def run_soak(plan: list[schedule.BatchPlan], args: argparse.Namespace, command: str) -> Report:
    """Start the stack, run the plan, stop everything, reconcile."""
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="ib-soak-"))
    progress = _progress
    progress(f"soak: {args.runs} runs, seed {args.seed}; logs in {run_dir}")
    with sigterm_as_interrupt():
        stack = SoakStack(run_dir)
        with stack:
            result = Harness(stack, plan, args.duration, progress).run()
    evidence = result.evidence
    if evidence is None:
        raise RuntimeError("the soak ended without evidence")
    found = reconcile(
        [run.spec.key for run in result.runs],
        evidence.records,
        evidence.broker,
        evidence.outcomes,
        evidence.dead_letters,
        evidence.bigquery_ids,
        DEPLOYMENT,
    )
    ports = tuple(stack.ports_left_open)
    return Report(command, args.runs, args.batch_size, result, found, ports)


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this soak (for the report)."""
    options = ["--runs", str(args.runs), "--seed", str(args.seed)]
    options += ["--duration", f"{args.duration:g}"]
    options += ["--only", args.only] if args.only else []
    return "python -m soak " + shlex.join(options)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
