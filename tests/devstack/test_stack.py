"""The stack's printout, scenario handling before start-up, and the Makefile's pass-through."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from worker.devstack.clock import IbsimClock
from worker.devstack.emulators import Emulators
from worker.devstack.pubsub_setup import PubSubNames, dead_letter_endpoint
from worker.devstack.stack import DevStack, IbsimProcess, RunningStack, WorkerProcess

ROOT = Path(__file__).parents[2]


def _running(scenario: str = "two_accounts", **extra: object) -> RunningStack:
    names = PubSubNames.from_names_file("p1", "paper")
    return RunningStack(
        project="p1",
        scenario=scenario,
        run_dir=Path("/tmp/run"),
        emulators=Emulators("p1", "127.0.0.1:8085", "127.0.0.1:8086", 1.0, ()),
        # describe() reads addresses and names only: no processes, no Pub/Sub clients.
        ibsim=IbsimProcess(process=None, host="127.0.0.1", port=4002, control_port=4010),
        worker=WorkerProcess(process=None, host="127.0.0.1", port=8080, env={}),
        pubsub=SimpleNamespace(names=names),
        timings={"emulators": 4.0},
        **extra,
    )


def _lines(stack: RunningStack) -> dict[str, str]:
    """The printout keyed by each line's first word (two for "ibsim clock")."""
    lines = stack.describe().splitlines()
    return {
        " ".join(line.split()[: 2 if line.startswith("ibsim clock") else 1]): line for line in lines
    }


def test_ibsim_line_names_api_control_and_scenario() -> None:
    line = _lines(_running())["ibsim"]
    assert line == "ibsim           127.0.0.1:4002  control 127.0.0.1:4010  scenario two_accounts"


def test_ibsim_clock_line_says_real_time_by_default() -> None:
    assert _lines(_running())["ibsim clock"] == "ibsim clock     real time (market open)"


def test_ibsim_clock_line_names_a_pinned_start_and_why() -> None:
    start = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
    clock = IbsimClock(start, "the market is closed now; ibsim trades inside the last session")
    assert _lines(_running(clock=clock))["ibsim clock"] == (
        "ibsim clock     2026-11-27T15:30:00Z "
        "(the market is closed now; ibsim trades inside the last session)"
    )


def test_dead_letter_line_names_pull_and_push() -> None:
    line = _lines(_running())["dead"]
    assert line == (
        "dead letters    topic ib-paper-intents-dead-letter -> pull "
        "ib-paper-intents-dead-letter-pull, push ib-paper-intents-dead-letter-push -> "
        "http://127.0.0.1:8080/dead-letters"
    )


def test_other_printout_lines_stay() -> None:
    lines = _lines(_running())
    assert lines["worker"] == (
        "worker          http://127.0.0.1:8080  (push endpoint http://127.0.0.1:8080/)"
    )
    assert (
        lines["intents"] == "intents         topic ib-paper-intents -> push ib-paper-intents-push"
    )
    assert lines["PUBSUB_EMULATOR_HOST=127.0.0.1:8085"]
    assert lines["results"].startswith("results         topic ib-intent-results -> pull ")
    assert lines["started"] == "started in      emulators 4.0s"


@pytest.mark.parametrize(
    ("push_endpoint", "expected"),
    [
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/dead-letters"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/dead-letters"),
        ("https://ib-paper-abc.a.run.app/", "https://ib-paper-abc.a.run.app/dead-letters"),
    ],
)
def test_dead_letter_route_hangs_off_the_server_root(push_endpoint: str, expected: str) -> None:
    assert dead_letter_endpoint(push_endpoint) == expected


def test_devstack_resolves_a_scenario_path_before_starting(tmp_path: Path) -> None:
    scenario = tmp_path / "mine.yaml"
    scenario.write_text("seed: 1\n")
    assert DevStack(tmp_path, scenario=str(scenario)).scenario == str(scenario)
    assert DevStack(tmp_path, scenario="two_accounts").scenario == "two_accounts"


def test_cli_refuses_a_missing_scenario_file_at_once(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "worker.devstack", "stack", "--run-dir", str(tmp_path)]
    argv += ["--scenario", str(tmp_path / "missing.yaml")]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "start-up failed: ibsim scenario file not found" in run.stderr
    assert list(tmp_path.iterdir()) == []  # nothing started, so nothing logged


def _make_dry_run(*args: str) -> str:
    # -n prints the recipes without running them (none of these recipes calls $(MAKE)).
    run = subprocess.run(
        ["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return run.stdout


@pytest.mark.parametrize("target", ["stack", "demo"])
def test_make_passes_the_scenario(target: str) -> None:
    assert f"-m worker.devstack {target} --scenario 'default'" in _make_dry_run(target)
    out = _make_dry_run(target, "SCENARIO=two_accounts")
    assert f"-m worker.devstack {target} --scenario 'two_accounts'" in out
    out = _make_dry_run(target, "SCENARIO=my scenarios/x.yaml")
    assert f"-m worker.devstack {target} --scenario 'my scenarios/x.yaml'" in out
