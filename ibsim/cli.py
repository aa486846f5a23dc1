"""``ibsim serve`` and ``ibsim fault``.

``serve`` prints exactly one line, ``ibsim listening on HOST:PORT``, to stdout once it accepts
clients (scripts wait for it); logs go to stderr, including the control endpoint's address.
SIGTERM and SIGINT stop it cleanly (clients dropped, broker state saved).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import datetime

from ibsim import control
from ibsim.market import Clock
from ibsim.scenario import available
from ibsim.server import Simulator

DEFAULT_PORT = 4002  # IB Gateway's paper-trading port
DEFAULT_CONTROL = "127.0.0.1:4003"

log = logging.getLogger("ibsim")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ibsim", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the simulated gateway")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default: loopback)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="API port (0: any)")
    serve.add_argument("--scenario", default=None, help=f"name ({', '.join(available())}) or path")
    serve.add_argument("--state-dir", default=None, help="keep broker state here across runs")
    serve.add_argument("--seed", type=int, default=None, help="price seed (default: scenario's)")
    serve.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="loopback control port (default: API port + 1; with --port 0, any free port)",
    )
    serve.add_argument("--clock-start", default=None, help="ISO time the clock starts at")
    serve.add_argument("--frozen-clock", action="store_true", help="clock moves only on demand")
    fault = commands.add_parser("fault", help="inject a fault into a running `ibsim serve`")
    fault.add_argument("mode", help="e.g. drop-all, delay-end positionEnd 2, status")
    fault.add_argument("args", nargs="*", help="arguments of the mode")
    fault.add_argument("--control", default=DEFAULT_CONTROL, help="HOST:PORT of the endpoint")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ibsim`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "fault":
        return run_fault(args)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    asyncio.run(serve(args))
    return 0


def run_fault(args: argparse.Namespace) -> int:
    try:
        reply = control.send(args.control, args.mode, args.args)
    except OSError as exc:
        print(f"ibsim fault: cannot reach {args.control}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(reply))
    return 0 if reply.get("ok") else 1


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGTERM/SIGINT."""
    start = datetime.fromisoformat(args.clock_start) if args.clock_start else None
    clock = Clock(start, frozen=args.frozen_clock) if start or args.frozen_clock else None
    sim = Simulator(args.scenario, args.host, args.port, args.state_dir, args.seed, clock=clock)
    await sim.start()
    control_port = args.control_port
    if control_port is None:
        control_port = args.port + 1 if args.port else 0
    endpoint = await control.start_control(sim, control_port)
    log.info("ibsim control on %s:%s", *endpoint.sockets[0].getsockname()[:2])
    print(f"ibsim listening on {sim.host}:{sim.port}", flush=True)
    await _wait_for_signal()
    log.info("stopping")
    endpoint.close()
    await endpoint.wait_closed()
    await sim.stop()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
