"""Command line: ``python -m worker.devstack {demo,stack,publish,outcomes}``.

demo     start everything, write a trading config, publish a few intents (place_order,
         allocation, trade_reconciliation, close_all among them), print their outcomes, stop;
         exit 0 on success
stack    start everything and keep it running until Ctrl-C / SIGTERM

Both run ibsim on real time while the US stock market is open, else with its clock inside the
market's last session (--ibsim-clock; see worker/devstack/clock.py), and print which.
publish  publish one intent to a running stack's emulator (the command `stack` prints)
outcomes print outcome events from a running stack's results subscription until Ctrl-C
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from worker.devstack.clock import IbsimClock, clock_option
from worker.devstack.demo import (
    ORDER_PARAMS,
    OUTCOME_TIMEOUT_S,
    demo_account,
    firestore_config_writer,
    outcome_printer,
    run_demo,
)
from worker.devstack.emulators import DEFAULT_PROJECT
from worker.devstack.processes import StartupError, sigterm_as_interrupt
from worker.devstack.pubsub_setup import LocalPubSub, PubSubNames
from worker.devstack.stack import (
    WORKER_APP,
    WORKER_CONFIG,
    Commands,
    DevStack,
    RunningStack,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker.devstack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("demo", "stack"):
        cmd = sub.add_parser(name)
        cmd.add_argument(
            "--scenario",
            default="default",
            help="ibsim scenario: a built-in name (default, two_accounts, ...) or a YAML file path",
        )
        cmd.add_argument("--run-dir", type=Path, help="directory for logs (default: a temp dir)")
        cmd.add_argument("--project", default=DEFAULT_PROJECT)
        cmd.add_argument("--worker-app", default=WORKER_APP, help="gunicorn app spec")
        cmd.add_argument("--worker-config", default=WORKER_CONFIG, help="gunicorn --config")
        cmd.add_argument("--ibsim-command", default="", help="replaces the ibsim executable")
        cmd.add_argument(
            "--ibsim-clock",
            default="auto",
            help="ibsim's clock: auto (real time while the US stock market is open, else inside"
            " its last session), real, or an ISO time to start at",
        )
    sub.choices["demo"].add_argument(
        "--timeout", type=float, default=OUTCOME_TIMEOUT_S, help="seconds to wait for outcomes"
    )
    pub = sub.add_parser("publish")
    watch = sub.add_parser("outcomes")
    for cmd in (pub, watch):
        cmd.add_argument("--pubsub-host", required=True, help="PUBSUB_EMULATOR_HOST of the stack")
        cmd.add_argument("--project", default=DEFAULT_PROJECT)
    pub.add_argument("intent")
    pub.add_argument("params", nargs="?", default="{}", help="JSON object")
    pub.add_argument("-a", "--attr", action="append", default=[], help="name=value attribute")
    return parser


def _print(line: str) -> None:
    print(line, flush=True)


def _stack(args: argparse.Namespace) -> DevStack:
    commands = Commands(
        ibsim=shlex.split(args.ibsim_command),
        worker_app=args.worker_app,
        worker_config=args.worker_config or None,
    )
    stack = DevStack(
        args.run_dir,
        project=args.project,
        scenario=args.scenario,
        commands=commands,
        clock=_clock(args.ibsim_clock),
    )
    print(f"starting emulators, ibsim and worker; logs in {stack.run_dir}", flush=True)
    return stack


def _clock(value: str) -> IbsimClock:
    try:
        return clock_option(value, datetime.now(UTC))
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo; return 0 if every expected outcome (and the orders' fills) arrived."""
    with _stack(args) as stack:
        print(stack.describe(), flush=True)
        account = demo_account(stack.ibsim.accounts(), _print)
        write = firestore_config_writer(stack.emulators.firestore_host, stack.project)
        problems = run_demo(stack.pubsub, write, _print, args.timeout, account)
    print("stopped everything")
    for problem in problems:
        print(f"DEMO FAILED: {problem}", file=sys.stderr)
    if not problems:
        print(
            "demo OK: every expected outcome arrived, the orders filled, duplicates deduplicated,"
            " TLT flattened"
        )
    return 1 if problems else 0


def cmd_stack(args: argparse.Namespace) -> int:
    """Start the stack and wait until interrupted."""
    with _stack(args) as stack:
        print(stack.describe())
        print("\nexample publish:\n  " + _example(stack))
        try:
            print("\nrunning; Ctrl-C or SIGTERM stops everything", flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nstopping", flush=True)
    print("stopped everything")
    return 0


def _example(stack: RunningStack) -> str:
    argv = [sys.executable, "-m", "worker.devstack", "publish"]
    argv += ["--pubsub-host", stack.emulators.pubsub_host, "--project", stack.project]
    publish = [*argv, "summary", "{}", "-a", "idempotency_key=my-first-key"]
    order = [*argv, "place_order", json.dumps(ORDER_PARAMS), "-a", "idempotency_key=my-first-order"]
    watch = [*argv[:3], "outcomes", *argv[4:]]
    examples = shlex.join(publish) + "\n  " + shlex.join(order)
    return examples + "\n\nwatch outcomes:\n  " + shlex.join(watch)


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish one intent to the intents topic of a running stack."""
    attrs = dict(a.split("=", 1) for a in args.attr)
    pubsub = LocalPubSub(args.pubsub_host, PubSubNames.from_names_file(args.project))
    try:
        message_id = pubsub.publish_intent(args.intent, json.loads(args.params), attrs)
    finally:
        pubsub.close()
    print(f"published message {message_id} to {pubsub.names.intents_topic}")
    return 0


def cmd_outcomes(args: argparse.Namespace) -> int:
    """Print outcome events from a running stack's results subscription until interrupted."""
    pubsub = LocalPubSub(args.pubsub_host, PubSubNames.from_names_file(args.project))
    show = outcome_printer(_print)
    print(f"reading {pubsub.names.results_subscription}; Ctrl-C stops", flush=True)
    try:
        while True:
            pubsub.pull_outcomes(timeout=60, expected=1000, on_outcome=show)
    except KeyboardInterrupt:
        return 0
    finally:
        pubsub.close()


COMMANDS = {
    "demo": cmd_demo,
    "stack": cmd_stack,
    "publish": cmd_publish,
    "outcomes": cmd_outcomes,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        with sigterm_as_interrupt():
            return COMMANDS[args.command](args)
    except StartupError as exc:
        print(f"start-up failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
