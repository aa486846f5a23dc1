"""Process management with stand-in children: groups, readiness, stop order, escalation."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from worker.devstack.clock import IbsimClock
from worker.devstack.processes import (
    ProcessStack,
    StartupError,
    Terminated,
    free_port,
    group_members,
    http_status,
    port_open,
)
from worker.devstack.stack import ibsim_scenario, start_ibsim, start_worker, worker_env

pytestmark = pytest.mark.timeout(60)

STANDINS = Path(__file__).with_name("standins.py")


def standin(*args: str) -> list[str]:
    return [sys.executable, str(STANDINS), *args]


@pytest.fixture
def procs(tmp_path: Path):
    stack = ProcessStack(tmp_path)
    yield stack
    stack.stop_all(grace=2)


def test_child_runs_in_its_own_process_group(procs: ProcessStack) -> None:
    proc = procs.start("rec", standin("record", "x", "/dev/null"), ready_pattern="ready")
    proc.wait_ready_line(10)
    assert os.getpgid(proc.pid) == proc.pid != os.getpgrp()
    assert group_members(proc.pid) == [proc.pid]


def test_ibsim_ready_line_gives_host_and_port(procs: ProcessStack, tmp_path: Path) -> None:
    ib = start_ibsim(procs, "default", timeout=10, command=standin("ibsim"))
    assert ib.host == "127.0.0.1"
    assert port_open(ib.host, ib.port)
    log = (tmp_path / "ibsim.log").read_text()
    assert "ibsim listening on" in log
    # The control port is chosen by start_ibsim and handed to ibsim, which listens on it.
    assert f"--control-port {ib.control_port} " in log
    assert ib.control == f"127.0.0.1:{ib.control_port}"
    assert port_open("127.0.0.1", ib.control_port)
    assert ib.accounts() == []  # the stand-in answers no status


def test_ibsim_gets_a_scenario_name_as_is(procs: ProcessStack, tmp_path: Path) -> None:
    start_ibsim(procs, "two_accounts", timeout=10, command=standin("ibsim"))
    assert "--scenario two_accounts\n" in (tmp_path / "ibsim.log").read_text()


def test_ibsim_gets_a_relative_scenario_path_made_absolute(
    procs: ProcessStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mine.yaml").write_text("seed: 1\n")
    monkeypatch.chdir(tmp_path)  # as `make stack SCENARIO=mine.yaml` in the repository root
    start_ibsim(procs, "mine.yaml", timeout=10, command=standin("ibsim"))
    assert f"--scenario {tmp_path / 'mine.yaml'}\n" in (tmp_path / "ibsim.log").read_text()


def test_ibsim_gets_a_pinned_clock_before_the_scenario(procs: ProcessStack, tmp_path: Path) -> None:
    clock = IbsimClock(datetime(2026, 11, 27, 15, 30, tzinfo=UTC), "test")
    start_ibsim(procs, "default", timeout=10, command=standin("ibsim"), clock=clock)
    log = (tmp_path / "ibsim.log").read_text()
    assert " --clock-start 2026-11-27T15:30:00Z --scenario default\n" in log


def test_real_ibsim_runs_on_the_pinned_clock(procs: ProcessStack) -> None:
    from ibsim import control

    start = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
    ib = start_ibsim(procs, "default", timeout=30, clock=IbsimClock(start, "test"))
    clock = datetime.fromisoformat(control.send(ib.control, "status", [])["result"]["clock"])
    assert start <= clock < start + timedelta(seconds=30)  # it runs on from the start


@pytest.mark.parametrize("value", ["two_accounts", "default", "multi_currency"])
def test_scenario_names_pass_through(value: str) -> None:
    assert ibsim_scenario(value) == value


@pytest.mark.parametrize("value", ["missing.yaml", "some/dir/file", "./nope.yml"])
def test_missing_scenario_file_fails_before_anything_starts(
    value: str, procs: ProcessStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StartupError, match="scenario file not found"):
        start_ibsim(procs, value, timeout=10, command=standin("ibsim"))
    assert not (tmp_path / "ibsim.log").exists()


def test_real_ibsim_reads_a_scenario_file_and_serves_control(
    procs: ProcessStack, tmp_path: Path
) -> None:
    from ibsim import control

    scenario = tmp_path / "custom.yaml"
    scenario.write_text("accounts:\n  - id: DU7654321\n    cash: {USD: 1000}\n")
    ib = start_ibsim(procs, str(scenario), timeout=30)
    status = control.send(ib.control, "status", [])
    assert status["ok"], status
    # The account exists only in our file: ibsim loaded the path, not a built-in scenario.
    assert status["result"]["accounts"] == ["DU7654321"]
    assert status["result"]["api"] == f"{ib.host}:{ib.port}"
    assert ib.accounts() == ["DU7654321"]


def test_startup_failure_reports_exit_and_log(procs: ProcessStack) -> None:
    proc = procs.start("bad", standin("exit"), ready_pattern="never printed")
    with pytest.raises(StartupError, match=r"bad exited(.|\n)*boom: cannot start"):
        proc.wait_ready_line(10)


def test_stop_escalates_to_sigkill(procs: ProcessStack) -> None:
    proc = procs.start("stubborn", standin("stubborn"), ready_pattern="ready")
    proc.wait_ready_line(10)
    assert proc.stop(grace=0.5) == -signal.SIGKILL
    assert group_members(proc.pid) == []


def test_stop_kills_what_the_leader_left_in_its_group(procs: ProcessStack) -> None:
    # Like gcloud and its JVM: the leader exits on SIGTERM, a child in its group does not.
    proc = procs.start("family", standin("family"), ready_pattern=r"child=(\d+)")
    child = int(proc.wait_ready_line(10).group(1))
    assert set(group_members(proc.pid)) == {proc.pid, child}
    assert proc.stop(grace=0.5) == -signal.SIGTERM
    assert group_members(proc.pid) == []


def test_stack_stops_in_reverse_order_once(procs: ProcessStack, tmp_path: Path) -> None:
    record = tmp_path / "order.txt"
    names = ("first", "second", "third")
    started = [
        procs.start(n, standin("record", n, str(record)), ready_pattern="ready") for n in names
    ]
    for proc in started:
        proc.wait_ready_line(10)
    procs.stop_all(grace=5)
    procs.stop_all(grace=5)
    assert record.read_text().split() == ["third", "second", "first"]


def test_worker_under_gunicorn_answers_healthz_and_stops(procs: ProcessStack) -> None:
    port = free_port()
    env = {**os.environ, "WORKER_BIND": f"127.0.0.1:{port}", "PYTHONPATH": str(STANDINS.parent)}
    worker = start_worker(
        procs, env, app="standins:create_app()", config=None, timeout=20, wait_ready=True
    )
    assert http_status(worker.url + "/healthz") == 200
    worker.process.stop(grace=5)
    assert not port_open("127.0.0.1", port)
    assert group_members(worker.process.pid) == []


def test_worker_env_points_at_stack(tmp_path: Path) -> None:
    from worker.devstack.emulators import Emulators

    emu = Emulators("p1", "127.0.0.1:1", "127.0.0.1:2", 0.0, ())
    env = worker_env(
        port=8123,
        project="p1",
        ib_host="127.0.0.1",
        ib_port=4002,
        emulators=emu,
        results_topic="res",
        overrides={"IB_CLIENT_ID": "7"},
    )
    assert env["WORKER_BIND"] == "127.0.0.1:8123"
    assert env["PUBSUB_EMULATOR_HOST"] == "127.0.0.1:1"
    assert env["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:2"
    assert (env["TRADING_MODE"], env["IB_PORT"], env["IB_CLIENT_ID"]) == ("paper", "4002", "7")
    assert env["RESULTS_TOPIC"] == "res"


def test_sigterm_becomes_terminated_exception() -> None:
    code = (
        "import os, signal\n"
        "from worker.devstack.processes import sigterm_as_interrupt, Terminated\n"
        "try:\n"
        "    with sigterm_as_interrupt():\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        signal.pause()\n"
        "except Terminated:\n"
        "    print('unwound')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "unwound"
    assert issubclass(Terminated, KeyboardInterrupt)


def test_children_are_stopped_when_the_parent_is_killed(tmp_path: Path) -> None:
    # The parent starts a SIGTERM-ignoring child, then dies by SIGKILL without stopping it;
    # the reaper watchdog must still stop the child's group.
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from worker.devstack.processes import ManagedProcess\n"
        f"p = ManagedProcess.start('s', {standin('stubborn')!r}, log_dir=Path({str(tmp_path)!r}),"
        " ready_pattern='ready')\n"
        "p.wait_ready_line(10)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert group_members(child) == [child]
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 15
    while group_members(child):
        assert time.monotonic() < deadline, "reaper did not stop the orphaned group"
        time.sleep(0.1)


def test_free_ports_lie_below_the_range_outgoing_connections_use() -> None:
    """A port from the ephemeral range can be taken by any client's next connection before
    the child binds it; ours are picked below it, distinct, and bindable."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    assert all(port < low for port in ports), (low, ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
