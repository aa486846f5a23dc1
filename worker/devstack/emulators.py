"""The official Pub/Sub and Firestore emulators from the Google Cloud CLI, on free ports.

Both are JVMs that take a few seconds to start, so they are started together and each is awaited
on its own ready line, then confirmed with an HTTP GET (both answer "Ok" on /). gcloud moves itself
into a process group of its own with the JVM inside; ManagedProcess starts it in a new session, so
the group id is gcloud's pid either way, and stopping signals that group only.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from worker.devstack.processes import (
    ManagedProcess,
    StartupError,
    free_port,
    port_open,
    wait_until,
)

if TYPE_CHECKING:
    from google.cloud import firestore

DEFAULT_PROJECT = "demo-ib-local"
START_TIMEOUT_S = 60.0

# The line each emulator prints once it accepts requests.
_PUBSUB_READY = r"Server started, listening on (\d+)"
_FIRESTORE_READY = r"Dev App Server is now running"


@dataclass
class Emulators:
    """Running Pub/Sub and Firestore emulators.

    Attributes:
        project: The project id the emulators serve (any id works; this one is used everywhere).
        pubsub_host: host:port for PUBSUB_EMULATOR_HOST.
        firestore_host: host:port for FIRESTORE_EMULATOR_HOST.
        started_in_s: Wall time from launch until both answered.
        processes: The gcloud processes (one process group each).
    """

    project: str
    pubsub_host: str
    firestore_host: str
    started_in_s: float
    processes: tuple[ManagedProcess, ...]

    def env(self) -> dict[str, str]:
        """Return the environment variables that point client libraries at these emulators."""
        return {
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "PUBSUB_PROJECT_ID": self.project,
            "GOOGLE_CLOUD_PROJECT": self.project,
        }

    def firestore_client(self) -> firestore.Client:
        """Return a Firestore client on this emulator (see ``firestore_client_at``)."""
        return firestore_client_at(self.firestore_host, self.project)

    def reset_firestore(self) -> None:
        """Delete every document in the emulator's default database (between tests)."""
        reset_firestore(self.firestore_host, self.project)

    def stop(self, grace: float = 10.0) -> None:
        """Stop both emulators (their whole process groups) and check their ports closed.

        Raises:
            RuntimeError: A port still accepts connections after the processes are gone.
        """
        for proc in self.processes:
            proc.stop(grace)
        hosts = (self.pubsub_host, self.firestore_host)
        try:
            wait_until(lambda: not any(_open(h) for h in hosts), grace, "emulator ports to close")
        except StartupError as exc:
            still_open = [h for h in hosts if _open(h)]
            raise RuntimeError(f"emulator ports still open after stop: {still_open}") from exc


def gcloud_path() -> str:
    """Return the gcloud executable.

    Raises:
        StartupError: The Google Cloud CLI is not installed.
    """
    path = shutil.which("gcloud")
    if path is None:
        raise StartupError("gcloud not found: install the Google Cloud CLI with its emulators")
    return path


def pubsub_argv(port: int, project: str) -> list[str]:
    """Return the command that starts the Pub/Sub emulator on 127.0.0.1:port."""
    return [
        gcloud_path(),
        "beta",
        "emulators",
        "pubsub",
        "start",
        f"--host-port=127.0.0.1:{port}",
        f"--project={project}",
        "--quiet",
    ]


def firestore_argv(port: int) -> list[str]:
    """Return the command that starts the Firestore emulator on 127.0.0.1:port."""
    return [
        gcloud_path(),
        "emulators",
        "firestore",
        "start",
        f"--host-port=127.0.0.1:{port}",
        "--quiet",
    ]


def start_emulators(
    run_dir: Path, project: str = DEFAULT_PROJECT, timeout: float = START_TIMEOUT_S
) -> Emulators:
    """Start both emulators in parallel and wait until each answers.

    Args:
        run_dir: Directory for their log files (pubsub-emulator.log, firestore-emulator.log).
        project: Project id for the Pub/Sub emulator and for clients.
        timeout: Seconds to wait for each emulator.

    Returns:
        The running emulators. On failure both are stopped before the error propagates; a port
        taken between picking and binding it is tried once more on new ports.
    """
    try:
        return _start_emulators(run_dir, project, timeout)
    except StartupError as exc:
        if "Address already in use" not in str(exc):
            raise
        return _start_emulators(run_dir, project, timeout)


def _start_emulators(run_dir: Path, project: str, timeout: float) -> Emulators:
    began = time.monotonic()
    pubsub_port, firestore_port = free_port(), free_port()
    procs: list[ManagedProcess] = []
    try:
        procs.append(
            ManagedProcess.start(
                "pubsub-emulator",
                pubsub_argv(pubsub_port, project),
                log_dir=run_dir,
                ready_pattern=_PUBSUB_READY,
            )
        )
        procs.append(
            ManagedProcess.start(
                "firestore-emulator",
                firestore_argv(firestore_port),
                log_dir=run_dir,
                ready_pattern=_FIRESTORE_READY,
            )
        )
        for proc, port in zip(procs, (pubsub_port, firestore_port), strict=True):
            proc.wait_ready_line(timeout)
            proc.wait_http(f"http://127.0.0.1:{port}/", timeout)
    except BaseException:
        for proc in reversed(procs):
            proc.stop()
        raise
    return Emulators(
        project=project,
        pubsub_host=f"127.0.0.1:{pubsub_port}",
        firestore_host=f"127.0.0.1:{firestore_port}",
        started_in_s=time.monotonic() - began,
        processes=tuple(procs),
    )


def reset_firestore(firestore_host: str, project: str) -> None:
    """Delete all documents of the (default) database through the emulator's REST API.

    Raises:
        RuntimeError: The emulator refused the request.
    """
    path = f"/emulator/v1/projects/{project}/databases/(default)/documents"
    firestore_admin(firestore_host, "DELETE", path)


def firestore_admin(
    firestore_host: str,
    method: str,
    path: str,
    body: dict[str, object] | None = None,
    timeout: float = 10.0,
) -> None:
    """One call to the Firestore emulator's own REST API (``/emulator/v1/...``: reset, export).

    Raises:
        RuntimeError: The emulator answered anything but 200.
    """
    host, port = firestore_host.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        payload = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, payload, headers)
        resp = conn.getresponse()
        answer = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"Firestore emulator {method} {path}: {resp.status} {answer[:200]!r}")


def firestore_client_at(host: str, project: str) -> firestore.Client:
    """Return a Firestore client on the emulator at ``host`` (host:port), whatever the
    environment of this process says.

    The client library finds an emulator only through FIRESTORE_EMULATOR_HOST, read once in the
    constructor; the variable is set for that call alone, so the environment (and every client
    created later) is left as it was.
    """
    # Imported here: most users of this module (starting and stopping the emulators) never
    # build a client, so they need not load the Firestore library and gRPC with it.
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    with _environment("FIRESTORE_EMULATOR_HOST", host):
        return firestore.Client(project=project, credentials=AnonymousCredentials())


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _open(host_port: str) -> bool:
    host, port = host_port.rsplit(":", 1)
    return port_open(host, int(port))
