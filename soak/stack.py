"""The soak's deployment on loopback, built from worker/devstack's helpers, plus fault handles.

Parts (all on 127.0.0.1, stopped in reverse order even when start-up fails):

- the official Pub/Sub and Firestore emulators (``start_emulators``); the Firestore emulator can
  be restarted keeping its data (export, stop, ``--import-data``) on the same port;
- two ``TcpProxy``s (tests/fakes) between the worker and the emulators: the worker reaches
  Firestore and publishes to Pub/Sub only through them, so an outage or a hang hits the worker
  alone, not the emulator's push deliveries or the soak's own reads;
- the loopback BigQuery fake (tests/fakes/bigquery.py) for the outcome rows;
- ibsim (``ibsim serve``, clock pinned inside a session) and its control endpoint;
- the worker under gunicorn (``start_worker``), restartable after SIGKILL on the same port, and
  a second instance started on demand (the takeover of a frozen one);
- the ``PushRouter`` as the push endpoint, and the deployment's topics and subscriptions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from ibsim import control as ibsim_control
from soak.pubsub import setup_pubsub
from soak.router import PushRouter
from tests.fakes.bigquery import FakeBigQuery
from tests.fakes.tcp_proxy import TcpProxy
from worker.devstack.clock import IbsimClock
from worker.devstack.emulators import (
    DEFAULT_PROJECT,
    Emulators,
    firestore_admin,
    firestore_argv,
    start_emulators,
)
from worker.devstack.processes import (
    ManagedProcess,
    ProcessStack,
    free_port,
    port_open,
    wait_until,
)
from worker.devstack.pubsub_setup import LocalPubSub, PubSubNames
from worker.devstack.stack import IbsimProcess, WorkerProcess, start_ibsim, start_worker, worker_env
from worker.envelope import digest
from worker.names import names

DEPLOYMENT = "ib-soak"
# Wednesday 18 Nov 2026, 10:30 New York: a regular session with hours to run (ibsim's clock
# moves in real time from here; a soak of hours still ends inside the session).
SESSION_START = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)
# Short settings, so faults resolve within seconds (README, "Configuration").
WORKER_SETTINGS = {
    "DEPLOYMENT": DEPLOYMENT,
    "IB_CLIENT_ID": "1",
    "IB_CONNECT_TIMEOUT": "3",
    "LEASE_SECONDS": "6",
    "ORDER_ACK_SECONDS": "2",
    "ORDER_SEARCH_SECONDS": "2",
    "INTENT_TIMEOUT_SECONDS": "10",
    "CONFIG_CACHE_SECONDS": "0",
    "GUNICORN_THREADS": "16",
    "BQ_DATASET": names()["bigquery"]["dataset"],
}
START_TIMEOUT_S = 60.0
TRADING_CONFIG = {
    "exposure": {"overall": 0.5, "strategies": {"fixed_weights": 0.5, "dummy": 0.3}},
    "strategies": {
        "fixed_weights": {"weights": {"SPY": 0.3, "TLT": 0.2, "QQQ": 0.1}},
        "dummy": {"weights": {"AAPL": 0.2, "SPY": -0.1}},
    },
}
# `gcloud emulators firestore start` prints this once it serves (as worker/devstack/emulators).
FIRESTORE_READY = r"Dev App Server is now running"
_UNAVAILABLE = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError)
T = TypeVar("T")


class WorkerSlot:
    """One worker instance: gunicorn on a fixed port, restartable; each life logs apart."""

    def __init__(self, name: str, env: Mapping[str, str], run_dir: Path) -> None:
        self.name, self.env, self.run_dir = name, dict(env), run_dir
        self.lives = 0
        self._stacks: list[ProcessStack] = []
        self.process: WorkerProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.env['WORKER_BIND']}"

    @property
    def port(self) -> int:
        return int(self.env["WORKER_BIND"].rsplit(":", 1)[1])

    def start(self) -> None:
        """Start gunicorn and wait until /readyz answers 200 (IB session synced)."""
        self.lives += 1
        stack = ProcessStack(self.run_dir / f"{self.name}-{self.lives}")
        self._stacks.append(stack)
        self.process = start_worker(stack, self.env, wait_ready=True, timeout=START_TIMEOUT_S)

    def running(self) -> bool:
        return self.process is not None and self.process.process.running()

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the instance's process group (gunicorn master and worker)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole instance, as when Cloud Run's instance is killed, and reap it."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.process.popen.wait(timeout=10)
            wait_until(lambda: not port_open("127.0.0.1", self.port), 10, f"{self.name} port")

    def stop(self) -> None:
        """Stop every life of this instance (SIGCONT first: a frozen one cannot exit)."""
        self.signal(signal.SIGCONT)
        for stack in reversed(self._stacks):
            stack.stop_all()


class SoakStack:
    """Everything a soak runs against; a context manager that always stops what it started."""

    def __init__(self, run_dir: Path | None = None, project: str = DEFAULT_PROJECT) -> None:
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix="ib-soak-"))
        self.project = project
        self.names = PubSubNames.from_names_file(project, "paper")
        self.procs = ProcessStack(self.run_dir)
        self._closers: list[Any] = []
        self.emulators: Emulators
        self.ibsim: IbsimProcess
        self.worker: WorkerSlot
        self.standby: WorkerSlot | None = None
        self.router: PushRouter
        self.pubsub: LocalPubSub
        self.firestore: firestore.Client
        self.bigquery: FakeBigQuery
        self.fs_proxy: TcpProxy
        self.ps_proxy: TcpProxy
        self._firestore_lives = 1
        self._standbys = 0
        self.ports_left_open: list[int] = []

    # -- life cycle ---------------------------------------------------------------------
    def __enter__(self) -> SoakStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        self.emulators = start_emulators(self.run_dir, self.project)
        self._closers.append(self.emulators.stop)
        self.fs_proxy = self._proxy(self.emulators.firestore_host)
        self.ps_proxy = self._proxy(self.emulators.pubsub_host)
        self.bigquery = FakeBigQuery().serve()
        self._closers.append(self.bigquery.close)
        self.bigquery.create_tables(self.project)
        self.firestore = self.emulators.firestore_client()
        self.set_config(TRADING_CONFIG["exposure"]["overall"])
        clock = IbsimClock(start=SESSION_START, reason="soak: a fixed moment inside a session")
        self.ibsim = start_ibsim(self.procs, "default", clock=clock)
        self.router = PushRouter().start()
        self._closers.append(self.router.stop)
        self.worker = WorkerSlot("worker", self.worker_env(), self.run_dir)
        self._closers.append(self.worker.stop)
        self.worker.start()
        self.router.route_to(self.worker.url)
        self.pubsub = LocalPubSub(self.emulators.pubsub_host, self.names)
        self._closers.append(self.pubsub.close)
        setup_pubsub(self.pubsub, self.router.url + "/")

    def _proxy(self, host_port: str) -> TcpProxy:
        host, port = host_port.rsplit(":", 1)
        proxy = TcpProxy((host, int(port))).start()
        self._closers.append(proxy.stop)
        return proxy

    def stop(self) -> None:
        """Stop everything, newest first; then note any port of ours that still accepts
        (``ports_left_open``, which the report shows and fails on)."""
        ports = self.ports()
        self.stop_standby()
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                close()
        self._closers.clear()
        self.procs.stop_all()
        self.ports_left_open = [p for p in ports if port_open("127.0.0.1", p)]

    def ports(self) -> list[int]:
        """Every loopback port this stack listens on (checked closed after stop)."""
        found: list[int] = []
        for attr, pick in _PORTS.items():
            part = getattr(self, attr, None)
            found += pick(part) if part is not None else []
        return found

    # -- the worker -----------------------------------------------------------------------
    def worker_env(self, client_id: int = 1) -> dict[str, str]:
        """The worker's environment: stores through the proxies, short soak settings."""
        ibsim = self.ibsim
        overrides = {
            **WORKER_SETTINGS,
            "IB_CLIENT_ID": str(client_id),
            "FIRESTORE_EMULATOR_HOST": self.fs_proxy.address,
            "PUBSUB_EMULATOR_HOST": self.ps_proxy.address,
            "BIGQUERY_API_ENDPOINT": self.bigquery.endpoint,
        }
        return worker_env(
            port=free_port(),
            project=self.project,
            ib_host=ibsim.host,
            ib_port=ibsim.port,
            emulators=self.emulators,
            results_topic=self.names.results_topic,
            overrides=overrides,
        )

    def start_standby(self) -> WorkerSlot:
        """A second instance (own port, same clientId) for a takeover; stop it after."""
        self._standbys += 1
        self.standby = WorkerSlot(f"standby{self._standbys}", self.worker_env(), self.run_dir)
        self.standby.start()
        return self.standby

    def stop_standby(self) -> None:
        if self.standby is not None:
            self.standby.stop()
            self.standby = None

    # -- ibsim, Firestore ----------------------------------------------------------------
    def ibsim_fault(self, mode: str, *args: str) -> None:
        """Apply an ibsim fault mode through its control endpoint (raises if refused)."""
        reply = ibsim_control.send(self.ibsim.control, mode, list(args), timeout=10)
        if not reply.get("ok"):
            raise RuntimeError(f"ibsim fault {mode} {args}: {reply.get('error')}")

    def set_config(self, overall: float) -> None:
        """Write the trading config (config/common) with ``overall`` exposure."""
        doc = json.loads(json.dumps(TRADING_CONFIG))
        doc["exposure"]["overall"] = overall
        ref = self.firestore.collection("config").document("common")
        _retrying(lambda: ref.set(doc))

    def record(self, key: str) -> dict[str, Any] | None:
        """The idempotency record of ``key`` (read directly, not through the proxy)."""
        ref = self.firestore.collection(names()["firestore"]["runs_collection"])
        snapshot = _retrying(lambda: ref.document(digest(DEPLOYMENT, key)).get(timeout=5))
        return snapshot.to_dict() if snapshot.exists else None

    def restart_firestore(self) -> None:
        """Restart the Firestore emulator keeping its data; the worker's link is cut meanwhile.

        The proxy is cut first, so nothing the worker writes can land after the export: from
        the worker's side Firestore is away for the restart and comes back with every write it
        acknowledged.
        """
        self.fs_proxy.cut()
        try:
            metadata = self._export_firestore()
            pubsub_proc, old = self.emulators.processes
            old.stop()
            self._firestore_lives += 1
            new = self._start_firestore(f"--import-data={metadata}")
            self.emulators.processes = (pubsub_proc, new)
        finally:
            self.fs_proxy.restore()

    def _export_firestore(self) -> str:
        directory = Path(tempfile.mkdtemp(prefix="export-", dir=self.run_dir))
        body = {
            "database": f"projects/{self.project}/databases/(default)",
            "export_directory": str(directory),
        }
        path = f"/emulator/v1/projects/{self.project}:export"
        firestore_admin(self.emulators.firestore_host, "POST", path, body, timeout=30)
        [metadata] = directory.glob("*/*.overall_export_metadata")
        return str(metadata)

    def _start_firestore(self, *extra: str) -> ManagedProcess:
        port = int(self.emulators.firestore_host.rsplit(":", 1)[1])
        proc = ManagedProcess.start(
            f"firestore-emulator-{self._firestore_lives}",
            [*firestore_argv(port), *extra],
            log_dir=self.run_dir,
            ready_pattern=FIRESTORE_READY,
        )
        proc.wait_ready_line(START_TIMEOUT_S)
        proc.wait_http(f"http://{self.emulators.firestore_host}/", START_TIMEOUT_S)
        return proc


def _host_ports(*host_ports: str) -> list[int]:
    return [int(h.rsplit(":", 1)[1]) for h in host_ports]


_PORTS = {
    "emulators": lambda e: _host_ports(e.pubsub_host, e.firestore_host),
    "ibsim": lambda i: [i.port, i.control_port],
    "worker": lambda w: [w.port],
    "standby": lambda w: [w.port],
    "router": lambda r: [r.port],
    "fs_proxy": lambda p: [p.port],
    "ps_proxy": lambda p: [p.port],
}


def _retrying(call: Callable[[], T], attempts: int = 30) -> T:
    """Our own reads and writes ride out a Firestore restart (bounded: about 15 s)."""
    for _ in range(attempts - 1):
        try:
            return call()
        except _UNAVAILABLE:
            time.sleep(0.5)
    return call()
