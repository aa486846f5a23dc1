"""Pytest plugin: the official emulators, ibsim and the worker under gunicorn, for e2e tests.

Register with ``pytest_plugins = ["tests.stack_fixtures"]`` (root conftest) or ``-p
tests.stack_fixtures``. Fixtures:

- ``emulators`` (session): Pub/Sub + Firestore emulators, started once; ``.env()`` for clients.
- ``emulator_env``: also exports PUBSUB_EMULATOR_HOST etc. into os.environ for this test.
- ``clean_firestore``: deletes every Firestore document before the test.
- ``pubsub``: a LocalPubSub whose resource names carry a per-test suffix; call
  ``pubsub.setup(url)`` for the full layout, or create single topics/subscriptions. Deleted after.
- ``push_receiver``: a loopback HTTP server that records Pub/Sub push deliveries.
- ``ibsim_factory`` / ``ibsim_server``: in-process ibsim (``ibsim.run_in_thread``).
- ``worker_server``: factory ``worker_server(**env)`` -> WorkerProcess (gunicorn), stopped after.

Tests that need the emulators carry ``@pytest.mark.emulators``; they are skipped when gcloud is
not installed, unless CI=true (then they fail).
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.tools import in_ci
from worker.devstack.emulators import Emulators, start_emulators
from worker.devstack.processes import ProcessStack, free_port
from worker.devstack.pubsub_setup import LocalPubSub, PubSubNames
from worker.devstack.stack import WORKER_APP, WORKER_CONFIG, WorkerProcess, start_worker, worker_env

_COUNTER = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip emulator tests on machines without the Google Cloud CLI, except under CI=true:
    there a missing tool the project needs must fail, never turn green (tests/tools.py).

    A collection hook cannot fail one test, so under CI=true the tests run and fail where the
    emulators start (gcloud_path: "gcloud not found").
    """
    if shutil.which("gcloud") or in_ci():
        return
    skip = pytest.mark.skip(reason="gcloud (with the Pub/Sub and Firestore emulators) not found")
    for item in items:
        if "emulators" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """Both emulators for the whole session; logs in the session's temp dir."""
    emu = start_emulators(tmp_path_factory.mktemp("emulators"))
    yield emu
    emu.stop()


@pytest.fixture
def emulator_env(emulators: Emulators, monkeypatch: pytest.MonkeyPatch) -> Emulators:
    """Point in-process client libraries at the emulators (env vars reset after the test)."""
    for name, value in emulators.env().items():
        monkeypatch.setenv(name, value)
    return emulators


@pytest.fixture
def clean_firestore(emulators: Emulators) -> Emulators:
    """Start the test with an empty Firestore emulator database."""
    emulators.reset_firestore()
    return emulators


@pytest.fixture
def pubsub(emulators: Emulators) -> Iterator[LocalPubSub]:
    """Clients on the Pub/Sub emulator with this test's own resource names (suffix -tN)."""
    names = PubSubNames.from_names_file(emulators.project, "paper", f"-t{next(_COUNTER)}")
    ps = LocalPubSub(emulators.pubsub_host, names)
    yield ps
    ps.delete_created()
    ps.close()


@dataclass
class PushReceiver:
    """A loopback HTTP server recording Pub/Sub push requests.

    Attributes:
        url: Push endpoint (http://127.0.0.1:PORT/).
        status: HTTP status answered to every request (set it to 500 to nack).
        requests: Recorded requests: {"path", "headers", "body"} (body parsed as JSON if it is).
    """

    url: str = ""
    status: int = 204
    requests: list[dict[str, Any]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def record(self, path: str, headers: dict[str, str], raw: bytes) -> None:
        """Store one request and wake waiters."""
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw
        with self._cond:
            self.requests.append({"path": path, "headers": headers, "body": body})
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """Wait until at least `count` requests arrived; return them all.

        Raises:
            TimeoutError: Fewer arrived within timeout seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} pushes after {timeout}s")
            return list(self.requests)


def _handler(receiver: PushReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.record(self.path, dict(self.headers.items()), raw)
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output clean

    return Handler


@pytest.fixture
def push_receiver() -> Iterator[PushReceiver]:
    """A PushReceiver serving on a free loopback port for this test."""
    receiver = PushReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, name="push-receiver", daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def ibsim_factory() -> Iterator[Callable[..., Any]]:
    """Factory: ibsim_factory(**kwargs) runs ``ibsim.run_in_thread(**kwargs)`` for this test.

    kwargs are run_in_thread's (scenario=, port=, state_dir=, seed=, ...). The returned
    simulator has .host, .port, .faults and .restart(); it is stopped after the test.
    """
    ibsim = importlib.import_module("ibsim")
    if not hasattr(ibsim, "run_in_thread"):
        pytest.skip("ibsim.run_in_thread is not available")
    with contextlib.ExitStack() as stack:

        def start(**kwargs: Any) -> Any:
            return stack.enter_context(ibsim.run_in_thread(**kwargs))

        yield start


@pytest.fixture
def ibsim_server(ibsim_factory: Callable[..., Any]) -> Any:
    """ibsim with its default scenario, in-process, for this test."""
    return ibsim_factory()


@pytest.fixture
def worker_server(
    emulators: Emulators,
    pubsub: LocalPubSub,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: worker_server(**env) starts the worker under gunicorn; stopped after the test.

    Defaults: the session emulators, this test's results topic (pubsub.names), TRADING_MODE=paper,
    IB_CLIENT_ID=1 and, unless IB_PORT is given, the ibsim_server fixture. Keyword arguments are
    environment overrides; also accepted: app=, config=, wait_ready=, timeout=.
    """
    procs = ProcessStack(tmp_path / "worker-run")

    def start(
        *,
        app: str = WORKER_APP,
        config: str | None = WORKER_CONFIG,
        wait_ready: bool = False,
        timeout: float = 30.0,
        **env: str,
    ) -> WorkerProcess:
        if "IB_PORT" not in env:
            ib = request.getfixturevalue("ibsim_server")
            env = {"IB_HOST": str(ib.host), "IB_PORT": str(ib.port), **env}
        full = worker_env(
            port=free_port(),
            project=emulators.project,
            ib_host=env.get("IB_HOST", "127.0.0.1"),
            ib_port=int(env["IB_PORT"]),
            emulators=emulators,
            results_topic=pubsub.names.results_topic,
            overrides=env,
        )
        return start_worker(
            procs, full, app=app, config=config, timeout=timeout, wait_ready=wait_ready
        )

    yield start
    procs.stop_all()
    for log in sorted((tmp_path / "worker-run").glob("*.log")):
        # Shown by pytest only when the test fails.
        request.node.add_report_section("teardown", log.name, log.read_text(errors="replace"))
