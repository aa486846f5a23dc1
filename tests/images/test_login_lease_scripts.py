"""The login lease in start-gateway.sh and the worker entrypoint, with a stub `ib-worker`.

An instance logs in only after it holds its deployment's lease, and gives the lease back only
after its gateway stopped; a lost lease stops the gateway (tests/worker/test_login_lease.py tests
the lease itself against the Firestore emulator).
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.images.conftest import ENTRYPOINT, START_GATEWAY, Sandbox

LEASE = {"LOGIN_LEASE": "firestore"}


def _gateway(sandbox: Sandbox, **env: str):
    return sandbox.start(["bash", str(START_GATEWAY)], STUB_JAVA="run", **LEASE, **env)


def test_gateway_logs_in_only_after_the_lease(sandbox: Sandbox) -> None:
    proc = _gateway(sandbox, STUB_LEASE_WAIT="0.8")
    sandbox.wait_event("java start")
    names = sandbox.names()
    assert names.index("lease acquired") < names.index("xvfb start") < names.index("ibcstart start")
    args = (sandbox.root / "ib-worker.args").read_text().split()
    assert args == ["login-lease", "hold"]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)


def test_stop_releases_the_lease_after_the_gateway_stopped(sandbox: Sandbox) -> None:
    proc = _gateway(sandbox)
    sandbox.wait_event("java start")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    names = sandbox.names()
    assert names.index("java term") < names.index("lease release") < names.index("xvfb term")


def test_stop_while_waiting_for_the_lease_never_logs_in(sandbox: Sandbox) -> None:
    proc = _gateway(sandbox, STUB_LEASE_WAIT="30")
    sandbox.wait_event("lease wait")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert time.monotonic() - started < 2.5  # within Cloud Run's 10 s, with room for the worker
    assert "lease cancelled" in sandbox.names()
    assert "ibcstart start" not in sandbox.names()


def test_a_lost_lease_stops_the_gateway(sandbox: Sandbox) -> None:
    proc = _gateway(sandbox, STUB_LEASE="lose:0.5")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 75
    assert "lost the login lease" in err
    names = sandbox.names()
    assert names.index("lease lost") < names.index("java term")


def test_a_failing_lease_holder_stops_the_start(sandbox: Sandbox) -> None:
    proc = _gateway(sandbox, STUB_LEASE="fail")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 75
    assert "the login lease holder exited (status 1) before it had the lease" in err
    assert "ibcstart start" not in sandbox.names()


def test_gateway_exit_releases_the_lease(sandbox: Sandbox) -> None:
    result = sandbox.gateway(**LEASE, STUB_JAVA="exit:3")
    assert result.returncode == 3
    names = sandbox.names()
    assert names.index("java exit") < names.index("lease release")


def test_lease_off_by_default_and_checked(sandbox: Sandbox) -> None:
    assert sandbox.gateway().returncode == 0
    assert not any(name.startswith("lease") for name in sandbox.names())
    result = sandbox.gateway(LOGIN_LEASE="redis")
    assert result.returncode == 78
    assert "LOGIN_LEASE must be firestore or off" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_container_stop_order_worker_gateway_lease(sandbox: Sandbox, signum: int) -> None:
    proc = sandbox.start(
        ["bash", str(ENTRYPOINT)],
        GATEWAY_START=str(START_GATEWAY),
        STUB_JAVA="run",
        STUB_DRAIN="0.3",
        **LEASE,
    )
    sandbox.wait_event("java start")
    sandbox.wait_event("gunicorn start")
    started = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10
    names = sandbox.names()
    assert names.index("gunicorn exit") < names.index("java term") < names.index("lease release")


def test_worker_serves_while_the_gateway_waits_for_the_lease(sandbox: Sandbox) -> None:
    proc = sandbox.start(
        ["bash", str(ENTRYPOINT)],
        GATEWAY_START=str(START_GATEWAY),
        STUB_JAVA="run",
        STUB_LEASE_WAIT="30",
        **LEASE,
    )
    sandbox.wait_event("gunicorn start")
    sandbox.wait_event("lease wait")
    assert "ibcstart start" not in sandbox.names()  # not logged in, yet the worker runs
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "lease cancelled" in sandbox.names()
