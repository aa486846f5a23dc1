"""`python -m worker.devstack demo|stack` end to end, with stand-ins for ibsim and the worker.

The emulators are real; the stand-ins honour ibsim's ready-line contract and the worker's
health endpoints, so these tests check start-up, wiring, output and clean shutdown.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from worker.devstack.processes import group_members, port_open, wait_until

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(120)]

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def devstack(command: str, run_dir: Path, app: str, *extra: str) -> list[str]:
    ibsim = f"{sys.executable} {HERE / 'standins.py'} ibsim"
    return [
        sys.executable,
        "-m",
        "worker.devstack",
        command,
        "--run-dir",
        str(run_dir),
        "--ibsim-command",
        ibsim,
        "--worker-app",
        app,
        "--worker-config",
        "",
        *extra,
    ]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}


def children(pid: int) -> list[int]:
    """Direct children of pid (each leads its own process group)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_demo_passes_against_a_conforming_worker(tmp_path: Path) -> None:
    argv = devstack("demo", tmp_path, "standins:create_fake_worker()", "--timeout", "20")
    argv += ["--ibsim-clock", "2026-11-27T10:30:00-05:00"]
    run = subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "<- outcome SUCCEEDED summary" in run.stdout
    assert "<- outcome SUCCEEDED place_order" in run.stdout
    assert re.search(
        r"^ +leg order  order_ref=ibw:\S+:order  status=Filled  filled=10.0 ", run.stdout, re.M
    )
    assert "-> publish the same place_order again" in run.stdout
    assert run.stdout.count("<- outcome REJECTED") == 2
    assert "-> write the trading config to Firestore config/common: {" in run.stdout
    assert_trading_printout(run.stdout)
    assert "demo OK" in run.stdout
    assert "stopped everything" in run.stdout
    assert "ibsim clock     2026-11-27T15:30:00Z (as asked)\n" in run.stdout
    assert " --clock-start 2026-11-27T15:30:00Z --scenario " in (tmp_path / "ibsim.log").read_text()


def test_demo_fails_clearly_when_no_outcome_arrives(tmp_path: Path) -> None:
    argv = devstack("demo", tmp_path, "standins:create_app()", "--timeout", "2")
    run = subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=100)
    assert run.returncode == 1
    assert "DEMO FAILED: summary: no outcome event arrived within 2s" in run.stderr
    assert "DEMO FAILED: place_order: no outcome event arrived within 2s" in run.stderr
    assert "DEMO FAILED: allocation (dry run): no outcome event arrived within 2s" in run.stderr
    assert (
        "DEMO FAILED: not published: allocation, trade_reconciliation, close_all TLT"
        " (after allocation (dry run) had no outcome)"
    ) in run.stderr
    assert "stopped everything" in run.stdout


def test_a_bad_ibsim_clock_fails_before_anything_starts(tmp_path: Path) -> None:
    argv = devstack("demo", tmp_path, "standins:create_app()", "--ibsim-clock", "soon")
    run = subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert (
        "start-up failed: ibsim clock must be auto, real or an ISO time, not 'soon'" in run.stderr
    )
    assert list(tmp_path.iterdir()) == []


def assert_trading_printout(printout: str) -> None:
    """The trading steps' lines: the plan, the fills with their strategies, the reconciliation
    and the TLT position closed."""
    assert re.search(r"^ +leg alloc-\d+  planned  symbol=SPY  side=BUY  quantity=", printout, re.M)
    assert re.search(r"^ +leg alloc-\d+  planned  symbol=TLT  side=BUY  quantity=", printout, re.M)
    sent = r"^ +leg alloc-\d+  order_ref=\S+  status=(\w+)  .*  strategies=\{\"fixed_weights\": "
    assert re.findall(sent, printout, re.M) == ["Filled", "Filled"], printout
    assert "<- outcome SUCCEEDED trade_reconciliation" in printout
    assert re.search(r"^ +booked \d+ execution\(s\) to the strategies now$", printout, re.M)
    assert re.search(r"^ +blotter fixed_weights  \S+ \(conId \d+\)  position=", printout, re.M)
    assert re.search(r"^ +difference \S+ \(conId \d+\)  ours=", printout, re.M)
    assert "<- outcome SUCCEEDED close_all" in printout
    assert re.search(r"^ +leg close-\d+  order_ref=\S+  status=Filled  ", printout, re.M)


def assert_auto_clock(printout: str, ibsim_log: str) -> None:
    """The default clock: real time while the market is open, else a pinned start ibsim got."""
    line = re.search(r"^ibsim clock     (.+)$", printout, re.M)
    assert line, printout
    pinned = re.fullmatch(r"(\S+Z) \((the market is closed now|the market closes in).*\)", line[1])
    if pinned:
        assert f" --clock-start {pinned[1]} " in ibsim_log
    else:
        assert line[1] == "real time (market open)"
        assert "--clock-start" not in ibsim_log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stack_runs_until_signalled_then_stops_everything(tmp_path: Path, sig: int) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("seed: 1\n")
    argv = devstack("stack", tmp_path, "standins:create_app()", "--scenario", str(scenario))
    proc = subprocess.Popen(
        argv,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("running;"):
                break
        text = "".join(lines)
        groups = children(proc.pid)
        hosts = re.findall(r"127\.0\.0\.1:(\d+)", text)
        assert "example publish:" in text
        assert re.search(r" publish --pubsub-host \S+ --project \S+ place_order '\{", text)
        ibsim = re.search(r"^ibsim +(\S+)  control 127\.0\.0\.1:(\d+)  scenario (.+)$", text, re.M)
        assert ibsim, text
        assert port_open("127.0.0.1", int(ibsim.group(2)))  # the control endpoint is real
        assert ibsim.group(3) == str(scenario)
        assert f"--scenario {scenario}\n" in (tmp_path / "ibsim.log").read_text()
        assert_auto_clock(text, (tmp_path / "ibsim.log").read_text())
        worker = re.search(r"^worker +(http://\S+)", text, re.M).group(1)
        assert f"-intents-dead-letter-push -> {worker}/dead-letters\n" in text
        # two emulators, ibsim, gunicorn, and the reaper watchdog (which exits with its parent)
        assert len(groups) == 5, text
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, text + rest
    assert "stopped everything" in rest
    # The reaper notices its parent's exit a moment later.
    wait_until(lambda: not any(group_members(g) for g in groups), 5, "all groups gone")
    assert [p for p in hosts if port_open("127.0.0.1", int(p))] == []


# A scenario file of our own whose login serves two accounts: the demo must name one.
TWO_ACCOUNTS = """
accounts:
  - {id: DU3333333, cash: {USD: 100000}}
  - {id: DU4444444, cash: {USD: 200000}}
"""


@pytest.mark.parametrize("scenario", ["default", "file"])
def test_demo_with_the_real_worker_and_ibsim(tmp_path: Path, scenario: str) -> None:
    """`make demo`'s acceptance: real emulators, the ibsim CLI and the worker under gunicorn."""
    pytest.importorskip("ibsim.cli")
    pytest.importorskip("worker.app")
    argv = [sys.executable, "-m", "worker.devstack", "demo", "--run-dir", str(tmp_path)]
    if scenario == "file":
        (tmp_path / "accounts.yaml").write_text(TWO_ACCOUNTS)
        argv += ["--scenario", str(tmp_path / "accounts.yaml")]
    run = subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=110)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "<- outcome SUCCEEDED summary" in run.stdout
    assert "<- outcome SUCCEEDED place_order" in run.stdout
    assert re.search(r"^ +leg order  order_ref=\S+  status=Filled  filled=10.0 ", run.stdout, re.M)
    assert_trading_printout(run.stdout)
    assert "demo OK" in run.stdout
    assert_auto_clock(run.stdout, (tmp_path / "ibsim.log").read_text())
    if scenario == "file":
        assert "the demo's intents name DU3333333" in run.stdout
        assert "account=DU3333333" in run.stdout
    assert {p.name for p in tmp_path.glob("*.log")} == {
        "pubsub-emulator.log",
        "firestore-emulator.log",
        "ibsim.log",
        "worker.log",
    }
