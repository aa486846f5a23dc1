"""worker-image/entrypoint.sh with the real start-gateway.sh and stub IBC, java, Xvfb, gunicorn."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.images.conftest import ENTRYPOINT, PASSWORD, Sandbox, secret_holders


def _start(sandbox: Sandbox, *args: str, **env: str) -> subprocess.Popen[str]:
    env.setdefault("GATEWAY_START", str(sandbox.env["IBGW_SCRIPTS"]) + "/start-gateway.sh")
    return sandbox.start(["bash", str(ENTRYPOINT), *args], **env)


def _running(sandbox: Sandbox, **env: str) -> subprocess.Popen[str]:
    proc = _start(sandbox, **env)
    sandbox.wait_event("java start")
    sandbox.wait_event("gunicorn start")
    return proc


def test_starts_gunicorn_and_gateway_at_once(sandbox: Sandbox) -> None:
    proc = _running(sandbox)
    args = (sandbox.root / "gunicorn.args").read_text().splitlines()
    assert args == ["--config", "python:worker.gunicorn_conf", "worker.app:create_app()"]
    assert secret_holders(PASSWORD, sandbox) == []
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)


def test_command_arguments_replace_gunicorn(sandbox: Sandbox) -> None:
    proc = _start(sandbox, "gunicorn", "--check-config")
    sandbox.wait_event("gunicorn start")
    sandbox.wait_event("java start")
    assert (sandbox.root / "gunicorn.args").read_text().splitlines() == ["--check-config"]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)


def test_sigterm_stops_worker_first_then_gateway(sandbox: Sandbox) -> None:
    proc = _running(sandbox, STUB_DRAIN="0.5")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10  # Cloud Run's budget
    names = sandbox.names()
    assert names.index("gunicorn term") < names.index("gunicorn exit") < names.index("java term")
    assert names.index("java term") < names.index("xvfb term")


def test_sigterm_exit_status_is_the_workers(sandbox: Sandbox) -> None:
    proc = _running(sandbox, STUB_GUNICORN_STATUS="3")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 3
    assert "java term" in sandbox.names()


def test_slow_worker_is_killed_and_gateway_still_stopped(sandbox: Sandbox) -> None:
    proc = _running(sandbox, STUB_DRAIN="30", WORKER_STOP_TIMEOUT="0.5")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)  # the killed stub's drain timer keeps the pipes open until teardown
    assert proc.returncode == 128 + signal.SIGKILL
    assert "gunicorn exit" not in sandbox.names()
    assert "java term" in sandbox.names()


@pytest.mark.parametrize(("java", "status"), [("exit:0", 1), ("exit:3", 3)])
def test_gateway_death_stops_worker_and_fails(sandbox: Sandbox, java: str, status: int) -> None:
    proc = _start(sandbox, STUB_JAVA=java, STUB_DRAIN="0")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == status, err
    assert "the gateway stopped" in err
    assert "gunicorn term" in sandbox.names()


def test_worker_exit_stops_gateway(sandbox: Sandbox) -> None:
    proc = _start(sandbox, STUB_GUNICORN="exit:4")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 4, err
    assert "the worker exited with status 4" in err


def test_bad_gateway_setting_fails_the_container(sandbox: Sandbox) -> None:
    proc = _start(sandbox, TRADING_MODE="sandbox", STUB_DRAIN="0")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 78
    assert "TRADING_MODE must be one of: live paper (got 'sandbox')" in err


def test_credentials_reach_only_the_gateway_config(sandbox: Sandbox) -> None:
    secret_file = sandbox.root / "creds.json"
    secret_file.write_text(json.dumps({"username": "u", "password": PASSWORD}))
    del sandbox.env["TWS_USERID"], sandbox.env["TWS_PASSWORD"]
    proc = _running(sandbox, IB_CREDENTIALS_JSON_FILE=str(secret_file))
    gunicorn_pid = next(pid for who, _, pid in sandbox.events() if who == "gunicorn")
    environ = Path(f"/proc/{gunicorn_pid}/environ").read_bytes()
    assert b"IB_CREDENTIALS_JSON" not in environ
    found = [p for p in secret_holders(PASSWORD, sandbox) if p != str(secret_file)]
    assert found == []
    assert sandbox.config()["IbPassword"] == PASSWORD
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert PASSWORD not in out + err
