"""A sandbox that runs the images' real scripts under bash with stub IBC, Xvfb, java, gunicorn.

The stubs (tests/images/stubs/) append "<who> <what> <pid>" lines to an events file, which
is how tests observe order and await progress. Every process a test starts runs in a session
of its own and is killed with its group at teardown, as are the groups the stubs report.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATEWAY = REPO / "gateway-image"
SCRIPTS = GATEWAY / "scripts"
START_GATEWAY = SCRIPTS / "start-gateway.sh"
ENTRYPOINT = REPO / "worker-image" / "entrypoint.sh"
STUBS = Path(__file__).resolve().parent / "stubs"
PASSWORD = "Pw-7f3c9a1e-unique"
USERNAME = "edemo-user"


@dataclass
class Sandbox:
    """A temp HOME with a fake gateway install, IBC stub and stub programs on PATH."""

    root: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def events_file(self) -> Path:
        return self.root / "events"

    @property
    def ini(self) -> Path:
        return self.root / "home" / "ibc" / "config.ini"

    @property
    def gateway_dir(self) -> Path:
        return self.root / "home" / "Jts" / "ibgateway" / "1030"

    def events(self) -> list[tuple[str, str, int]]:
        """Parsed event lines: (who, what, pid)."""
        if not self.events_file.exists():
            return []
        rows = []
        for line in self.events_file.read_text().splitlines():
            parts = line.split()
            rows.append((parts[0], " ".join(parts[1:-1]), int(parts[-1])))
        return rows

    def names(self) -> list[str]:
        """Events as 'who what' strings, in order."""
        return [f"{who} {what}" for who, what, _ in self.events()]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll until predicate() is true; fail the test after timeout seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out; events so far: {self.names()}")
            time.sleep(0.01)

    def wait_event(self, name: str, timeout: float = 10.0) -> None:
        """Wait until an event starting with name was recorded."""
        self.wait_for(lambda: any(n.startswith(name) for n in self.names()), timeout)

    def start(self, argv: list[str], **env: str) -> subprocess.Popen[str]:
        """Start argv with the sandbox environment plus env, in a session of its own."""
        proc = subprocess.Popen(
            argv,
            env={**self.env, **env},
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def run(self, argv: list[str], timeout: float = 20, **env: str) -> subprocess.CompletedProcess:
        """Run argv to completion (the stub gateway exits at once unless told otherwise)."""
        env.setdefault("STUB_JAVA", "exit:0")
        proc = self.start(argv, **env)
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def gateway(self, timeout: float = 20, **env: str) -> subprocess.CompletedProcess:
        """Run start-gateway.sh to completion."""
        return self.run(["bash", str(START_GATEWAY)], timeout=timeout, **env)

    def config(self) -> dict[str, str]:
        """The rendered IBC config as a dict (raw, still Properties-escaped)."""
        pairs = [
            line.split("=", 1)
            for line in self.ini.read_text().splitlines()
            if "=" in line and not line.startswith("#")
        ]
        return dict(pairs)

    def kill_all(self) -> None:
        """Kill every process group this sandbox started or a stub reported."""
        groups = {p.pid for p in self.procs}
        for _, _, pid in self.events():
            try:
                groups.add(os.getpgid(pid))
            except ProcessLookupError:
                continue
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
        for proc in self.procs:
            proc.communicate(timeout=5)


def _fake_install(root: Path) -> None:
    gateway = root / "home" / "Jts" / "ibgateway" / "1030"
    (gateway / "jars").mkdir(parents=True)
    (gateway / "ibgateway.vmoptions").write_text("-Xmx768m\n-XX:+UseG1GC\n")
    ibc = root / "ibc" / "scripts"
    ibc.mkdir(parents=True)
    shutil.copy(STUBS / "ibcstart.sh", ibc / "ibcstart.sh")
    (root / "bin").mkdir()
    for name in ("Xvfb", "java", "gunicorn", "ib-worker"):
        shutil.copy(STUBS / name, root / "bin" / name)
    (root / "tmp").mkdir()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A fresh sandbox whose environment holds paper-trading TWS_USERID/TWS_PASSWORD."""
    _fake_install(tmp_path)
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path / "tmp"),
        "LANG": "C.UTF-8",
        "STUB_EVENTS": str(tmp_path / "events"),
        "STUB_DIR": str(tmp_path),
        "IBC_PATH": str(tmp_path / "ibc"),
        "TWS_VERSION": "10.30.1t",
        "TWS_USERID": USERNAME,
        "TWS_PASSWORD": PASSWORD,
        "IBGW_SCRIPTS": str(SCRIPTS),
    }
    box = Sandbox(tmp_path, env)
    yield box
    box.kill_all()


def secret_holders(secret: str, box: Sandbox) -> list[str]:
    """Every place the secret shows up besides the rendered config file: the argv of any
    process, the environment of any process the scripts started, any file in the sandbox.

    The environment of the script the test itself started is not checked: /proc/PID/environ
    is the block its parent (here the test, in production Cloud Run) passed at exec time.
    """
    needle = secret.encode()
    found = [str(path) for path in Path("/proc").glob("[0-9]*/cmdline") if needle in _read(path)]
    for _, _, pid in box.events():
        if needle in _read(Path(f"/proc/{pid}/environ")):
            found.append(f"/proc/{pid}/environ")
    for path in box.root.rglob("*"):
        if path.is_file() and path != box.ini and needle in _read(path):
            found.append(str(path))
    return found


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
