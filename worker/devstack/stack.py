"""A whole local deployment: emulators, ibsim and the worker under gunicorn, wired by Pub/Sub.

``DevStack`` starts the parts in dependency order and stops them in reverse order, also when
start-up fails half-way or the user presses Ctrl-C. Each child runs in a process group of its own
and logs into the run directory, whose path is printed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ibsim import control as ibsim_control
from worker.devstack.clock import REAL_TIME, IbsimClock
from worker.devstack.emulators import DEFAULT_PROJECT, Emulators, start_emulators
from worker.devstack.processes import (
    ManagedProcess,
    ProcessStack,
    StartupError,
    free_port,
    python_tool,
)
from worker.devstack.pubsub_setup import (
    LocalPubSub,
    PubSubNames,
    PushPolicy,
    dead_letter_endpoint,
)

# The bare stdout line `ibsim serve` prints once its API and control endpoint accept. Anchored:
# its log (stderr, same pipe) says "... ibsim.server ibsim listening on ..." before the control
# endpoint is up.
IBSIM_READY = r"^ibsim listening on ([0-9.]+):(\d+)\s*$"
WORKER_APP = "worker.app:create_app()"
WORKER_CONFIG = "python:worker.gunicorn_conf"
START_TIMEOUT_S = 60.0
# ibsim's control endpoint always binds loopback (ibsim/control.py).
IBSIM_CONTROL_HOST = "127.0.0.1"
# ibsim reads a --scenario value as a path when it has a '/' or a YAML suffix, else as a name.
_PATH_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class IbsimProcess:
    """An ibsim server running as a child process."""

    process: ManagedProcess
    host: str
    port: int
    control_port: int

    @property
    def control(self) -> str:
        """HOST:PORT of the control endpoint, as `ibsim fault --control` takes it."""
        return f"{IBSIM_CONTROL_HOST}:{self.control_port}"

    def accounts(self) -> list[str]:
        """The login's accounts from the control endpoint's status; [] if it gives none."""
        try:
            reply = ibsim_control.send(self.control, "status", [], timeout=5)
        except (OSError, ValueError):
            return []
        result = reply.get("result") if reply.get("ok") else None
        return [str(a) for a in result.get("accounts", [])] if isinstance(result, dict) else []


def ibsim_scenario(scenario: str) -> str:
    """Return the --scenario value for ibsim: a built-in name as is, a path made absolute.

    A relative path means the caller's directory (`make` runs in the repository root); absolute,
    it keeps that meaning in any working directory, and a missing file fails before anything
    starts instead of after the emulators did.

    Raises:
        StartupError: The value is a path (it has a '/' or ends .yaml/.yml) but names no file.
    """
    if "/" not in scenario and not scenario.endswith(_PATH_SUFFIXES):
        return scenario
    path = Path(scenario).expanduser().resolve()
    if not path.is_file():
        raise StartupError(f"ibsim scenario file not found: {scenario}")
    return str(path)


@dataclass(frozen=True)
class WorkerProcess:
    """The worker app under gunicorn, running as a child process."""

    process: ManagedProcess
    host: str
    port: int
    env: Mapping[str, str]

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8080 (Pub/Sub pushes to url + "/")."""
        return f"http://{self.host}:{self.port}"


def start_ibsim(
    stack: ProcessStack,
    scenario: str = "default",
    timeout: float = START_TIMEOUT_S,
    command: Sequence[str] = (),
    clock: IbsimClock = REAL_TIME,
) -> IbsimProcess:
    """Start `ibsim serve --port 0` and wait for its `ibsim listening on HOST:PORT` line.

    The control endpoint gets a free port chosen here, so the caller knows it without parsing
    ibsim's log; if another process takes it first, ibsim exits and this raises StartupError.

    Args:
        stack: Where to register the process.
        scenario: ibsim scenario: a built-in name or a YAML file (see ibsim_scenario).
        timeout: Seconds to wait for the ready line.
        command: Replaces the `ibsim` executable (e.g. a stand-in); the arguments follow it.
        clock: ibsim's clock: real time, or `--clock-start` at a chosen moment.
    """
    control_port = free_port()
    argv = [*(command or [python_tool("ibsim")]), "serve", "--port", "0"]
    argv += ["--control-port", str(control_port), *clock.argv()]
    argv += ["--scenario", ibsim_scenario(scenario)]
    proc = stack.start("ibsim", argv, ready_pattern=IBSIM_READY)
    match = proc.wait_ready_line(timeout)
    host, port = match.group(1), int(match.group(2))
    return IbsimProcess(process=proc, host=host, port=port, control_port=control_port)


def worker_env(
    *,
    port: int,
    project: str,
    ib_host: str,
    ib_port: int,
    emulators: Emulators,
    results_topic: str,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the worker's environment: ours, plus the deployment settings, plus overrides."""
    env = dict(os.environ)
    env.update(emulators.env())
    env.update(
        {
            "WORKER_BIND": f"127.0.0.1:{port}",
            "PROJECT_ID": project,
            "TRADING_MODE": "paper",
            "IB_HOST": ib_host,
            "IB_PORT": str(ib_port),
            "IB_CLIENT_ID": "1",
            "RESULTS_TOPIC": results_topic,
            # Log lines reach the log file as they happen, not when a buffer fills.
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides or {})
    return env


def start_worker(
    stack: ProcessStack,
    env: Mapping[str, str],
    *,
    app: str = WORKER_APP,
    config: str | None = WORKER_CONFIG,
    timeout: float = START_TIMEOUT_S,
    wait_ready: bool = False,
) -> WorkerProcess:
    """Start gunicorn on env["WORKER_BIND"] and wait until GET /healthz answers 200.

    Args:
        stack: Where to register the process (stopped by stack.stop_all()).
        env: Full environment; must contain WORKER_BIND=127.0.0.1:PORT.
        app: gunicorn application spec.
        config: gunicorn --config value (None: gunicorn defaults).
        timeout: Seconds to wait for /healthz (and /readyz).
        wait_ready: Also wait for GET /readyz 200 (IB session synced).
    """
    bind = env["WORKER_BIND"]
    argv = [sys.executable, "-m", "gunicorn", "--bind", bind]
    argv += ["--config", config] if config else []
    proc = stack.start("worker", [*argv, app], env=env)
    host, port = bind.rsplit(":", 1)
    worker = WorkerProcess(process=proc, host=host, port=int(port), env=dict(env))
    proc.wait_http(worker.url + "/healthz", timeout)
    if wait_ready:
        proc.wait_http(worker.url + "/readyz", timeout)
    return worker


@dataclass(frozen=True)
class RunningStack:
    """The parts of a started DevStack."""

    project: str
    scenario: str
    run_dir: Path
    emulators: Emulators
    ibsim: IbsimProcess
    worker: WorkerProcess
    pubsub: LocalPubSub
    timings: Mapping[str, float]
    clock: IbsimClock = REAL_TIME

    def describe(self) -> str:
        """Return a human-readable summary: URLs, hosts, topics, subscriptions, logs, timings."""
        n = self.pubsub.names
        took = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        ib = self.ibsim
        dead_url = dead_letter_endpoint(self.worker.url)
        dead = f"topic {n.dead_letter_topic} -> pull {n.dead_letter_subscription}"
        dead += f", push {n.dead_letter_push_subscription} -> {dead_url}"
        lines = [
            f"worker          {self.worker.url}  (push endpoint {self.worker.url}/)",
            f"ibsim           {ib.host}:{ib.port}  control {ib.control}  scenario {self.scenario}",
            f"ibsim clock     {self.clock.describe()}",
            f"project         {self.project}",
            f"PUBSUB_EMULATOR_HOST={self.emulators.pubsub_host}",
            f"FIRESTORE_EMULATOR_HOST={self.emulators.firestore_host}",
            f"intents         topic {n.intents_topic} -> push {n.intents_push_subscription}",
            f"dead letters    {dead}",
            f"results         topic {n.results_topic} -> pull {n.results_subscription}",
            f"logs            {self.run_dir}",
            f"started in      {took}",
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class Commands:
    """What to run for ibsim and the worker (stand-ins in tests, the real ones by default)."""

    ibsim: Sequence[str] = ()
    worker_app: str = WORKER_APP
    worker_config: str | None = WORKER_CONFIG


class DevStack:
    """Emulators + ibsim + worker + the deployment's Pub/Sub layout, as a context manager."""

    def __init__(
        self,
        run_dir: Path | None = None,
        *,
        project: str = DEFAULT_PROJECT,
        scenario: str = "default",
        mode: str = "paper",
        policy: PushPolicy | None = None,
        commands: Commands | None = None,
        clock: IbsimClock = REAL_TIME,
    ) -> None:
        """Describe a stack; nothing starts before __enter__.

        Args:
            run_dir: Directory for the logs (default: a new temp dir).
            project: Project id on the emulators.
            scenario: ibsim scenario: a built-in name or a YAML file (see ibsim_scenario).
            mode: Trading mode whose Pub/Sub names to use.
            policy: Push subscription policy (default: the deployment's).
            commands: What to run for ibsim and the worker.
            clock: ibsim's clock (see worker.devstack.clock.choose_clock).

        Raises:
            StartupError: scenario is a path that names no file (checked before anything starts).
        """
        self.commands = commands or Commands()
        self.scenario = ibsim_scenario(scenario)
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix="ib-devstack-"))
        self.project = project
        self.policy = policy
        self.clock = clock
        self.names = PubSubNames.from_names_file(project, mode)
        self.procs = ProcessStack(self.run_dir)
        self._emulators: Emulators | None = None
        self._pubsub: LocalPubSub | None = None
        self.timings: dict[str, float] = {}

    def __enter__(self) -> RunningStack:
        """Start everything; on any failure (or Ctrl-C) stop what started, then re-raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        """Stop everything that was started."""
        self.stop()

    def _start(self) -> RunningStack:
        with self._timed("emulators"):
            self._emulators = emulators = start_emulators(self.run_dir, self.project)
        with self._timed("ibsim"):
            ibsim = start_ibsim(
                self.procs, self.scenario, command=self.commands.ibsim, clock=self.clock
            )
        env = worker_env(
            port=free_port(),
            project=self.project,
            ib_host=ibsim.host,
            ib_port=ibsim.port,
            emulators=emulators,
            results_topic=self.names.results_topic,
        )
        with self._timed("worker"):
            worker = start_worker(
                self.procs,
                env,
                app=self.commands.worker_app,
                config=self.commands.worker_config,
                wait_ready=True,
            )
        with self._timed("pubsub"):
            self._pubsub = pubsub = LocalPubSub(emulators.pubsub_host, self.names)
            pubsub.setup(worker.url + "/", self.policy)
        return RunningStack(
            self.project,
            self.scenario,
            self.run_dir,
            emulators,
            ibsim,
            worker,
            pubsub,
            dict(self.timings),
            self.clock,
        )

    def stop(self) -> None:
        """Stop the worker, ibsim and the emulators, in that order; Ctrl-C cannot cut it short."""
        with _signals_deferred():
            if self._pubsub is not None:
                self._pubsub.close()
                self._pubsub = None
            self.procs.stop_all()
            if self._emulators is not None:
                self._emulators.stop()
                self._emulators = None

    @contextlib.contextmanager
    def _timed(self, what: str) -> Iterator[None]:
        began = time.monotonic()
        yield
        self.timings[what] = time.monotonic() - began


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while the block runs, so a second Ctrl-C cannot orphan children."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
