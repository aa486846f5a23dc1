"""`ibsim serve` as a real subprocess, driven by a client library and `ibsim fault`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ibsim import cli
from tests.ibsim import iblib
from tests.ibsim.iblib import wait_for

LISTENING = re.compile(r"^ibsim listening on (127\.0\.0\.1):(\d+)$")
CONTROL = re.compile(r"ibsim control on ([\d.]+:\d+)")


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[subprocess.Popen, int, str]]:
    """`ibsim serve --port 0` running; yields (process, API port, control address)."""
    cmd = [sys.executable, "-m", "ibsim", "serve", "--port", "0", "--state-dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().rstrip("\n")
        match = LISTENING.match(line)
        assert match, f"unexpected first line {line!r}"
        control = None
        while control is None:  # logged before the listening line was printed
            control = CONTROL.search(proc.stderr.readline())
        yield proc, int(match.group(2)), control.group(1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _fault(control: str, *args: str) -> dict:
    cmd = [sys.executable, "-m", "ibsim", "fault", *args, "--control", control]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    return json.loads(done.stdout)


@pytest.mark.ib_client
@pytest.mark.timeout(60)
def test_serve_connect_fault_and_sigterm(served):
    proc, port, control = served
    ib = iblib.IB()
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
    try:
        iblib.connect(ib, "127.0.0.1", port, client_id=1)
        assert ib.managedAccounts() == ["DU1234567"]
        assert _fault(control, "connectivity-blip", "1102")["ok"]
        wait_for(ib, lambda: [c for c in codes if 1100 <= c <= 1102] == [1100, 1102])
        assert _fault(control, "status")["result"]["clients"] == [1]
        assert _fault(control, "drop-all")["ok"]
        wait_for(ib, lambda: not ib.isConnected())
    finally:
        ib.disconnect()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert proc.stdout.read() == ""  # exactly one line on stdout


def test_unknown_fault_mode_is_refused(served):
    _, _, control = served
    reply = _fault(control, "no-such-mode")
    assert not reply["ok"]
    assert "unknown fault mode" in reply["error"]


def test_fault_without_a_server_exits_2(capsys):
    assert cli.main(["fault", "status", "--control", "127.0.0.1:1"]) == 2
    assert "cannot reach" in capsys.readouterr().err
