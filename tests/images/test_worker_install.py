"""worker-image/Dockerfile's install step, run here with the pip the image has (Debian 12's 23.0.1).

The RUN instruction that creates /opt/worker is taken from the Dockerfile and run under bash with
its paths moved into a throw-away prefix, on the wheel worker-image/build-wheel.sh builds, offline
(tests/images/offline_pip.py). Its own last command imports worker.app, as the image build does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.images.conftest import REPO
from tests.images.offline_pip import stub_wheelhouse, view_hook
from tests.tools import missing

DOCKERFILE = REPO / "worker-image" / "Dockerfile"
BUILD_WHEEL = REPO / "worker-image" / "build-wheel.sh"
# What `python3 -m venv` seeds in debian:bookworm (python3-venv uses python3-pip-whl).
DEBIAN_PYTHON = Path("/usr/bin/python3")
DEBIAN_PIP_WHEEL = Path("/usr/share/python-wheels/pip-23.0.1-py3-none-any.whl")


def _instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"^\s*#.*\n", "", DOCKERFILE.read_text(), flags=re.M)
    return [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()]


def _install_run() -> str:
    runs = [i for i in _instructions() if i.startswith("RUN ") and "/opt/worker/bin/pip" in i]
    assert len(runs) == 1, runs
    return runs[0].removeprefix("RUN ")


def _arg_default(name: str) -> str:
    for instruction in _instructions():
        match = re.fullmatch(rf"ARG {name}=(\S+)", instruction)
        if match:
            return match.group(1)
    raise AssertionError(f"ARG {name} has no default")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The production wheel, built the way Cloud Build builds it (offline flags added)."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        ["bash", str(BUILD_WHEEL), str(out)],
        env={**os.environ, "PYTHON": sys.executable, "WHEEL_BUILD_FLAGS": "--no-build-isolation"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """pip settings for an offline install from the stub wheelhouse, plus the view hook."""
    if not (DEBIAN_PYTHON.is_file() and DEBIAN_PIP_WHEEL.is_file()):
        missing("Debian 12's python3 and python3-pip-whl (pip 23.0.1) are not installed")
    root = tmp_path_factory.mktemp("offline")
    stub_wheelhouse(root / "wheels")
    return {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(root / "wheels"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONPATH": str(view_hook(root / "hook")),
    }


@dataclass
class Install:
    """One run of the Dockerfile's install step in its own throw-away prefix."""

    result: subprocess.CompletedProcess[str]
    prefix: Path


def _start_install(
    root: Path, wheel: Path, offline: dict[str, str], extras: str
) -> tuple[subprocess.Popen[str], Path]:
    prefix, stage = root / "opt-worker", root / "tmp-worker"
    (stage / "dist").mkdir(parents=True)
    (stage / "dist" / wheel.name).write_bytes(wheel.read_bytes())
    (stage / "constraints.txt").write_text((REPO / "constraints.txt").read_text())
    script = _install_run().replace("/opt/worker", str(prefix)).replace("/tmp/worker", str(stage))
    script = script.replace("${WORKER_EXTRAS}", extras)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(DEBIAN_PYTHON)
    proc = subprocess.Popen(
        ["bash", "-Eeuo", "pipefail", "-c", script],  # the Dockerfile's SHELL
        cwd=root,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(root), **offline},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, prefix


@pytest.fixture(scope="module")
def installs(
    tmp_path_factory: pytest.TempPathFactory, wheel: Path, offline: dict[str, str]
) -> dict[str, Install]:
    """The install step with the image's extra spelling and with the old one, run in parallel
    (both are mostly waiting on the disk)."""
    cases = {"image": _arg_default("WORKER_EXTRAS"), "underscore": "ib_async"}
    started = {
        name: _start_install(tmp_path_factory.mktemp(name), wheel, offline, extras)
        for name, extras in cases.items()
    }
    done = {}
    for name, (proc, prefix) in started.items():
        out, err = proc.communicate(timeout=300)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        done[name] = Install(result, prefix)
    return done


def _installed(prefix: Path) -> set[str]:
    site = next(prefix.glob("lib/python3*/site-packages"))
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


def test_wheel_carries_the_worker_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = next(zf.read(n) for n in names if n.endswith("entry_points.txt")).decode()
    packages = {name.split("/")[0] for name in names if not name.endswith(".dist-info/RECORD")}
    assert {p for p in packages if not p.endswith(".dist-info")} == {"worker"}
    assert not [n for n in names if n.startswith("worker/devstack/")]
    assert "worker/names.json" in names  # package data the worker reads at import
    assert "ib-worker = worker.cli:main" in entry_points
    assert "ibsim" not in entry_points


def test_install_with_the_images_pip_imports_the_app(
    installs: dict[str, Install], offline: dict[str, str], tmp_path: Path
) -> None:
    result, prefix = installs["image"].result, installs["image"].prefix
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    version = subprocess.run(
        [str(prefix / "bin" / "pip"), "--version"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version.startswith("pip 23.0.1 "), version
    installed = _installed(prefix)
    assert {"ib_async", "ib_cloudrun", "gunicorn", "exchange_calendars"} <= installed
    assert "ib_insync" not in installed
    assert not (prefix / "bin" / "ibsim").exists()
    probe = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", "import ibsim"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": offline["PYTHONPATH"]},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 1
    assert "No module named 'ibsim'" in probe.stderr


def test_the_underscore_spelling_is_caught_by_the_build(installs: dict[str, Install]) -> None:
    # What the image did before: pip 23.0.1 does not match ib_async to the wheel's ib-async, so
    # no IB library is installed; the RUN's import check must fail the build.
    result, prefix = installs["underscore"].result, installs["underscore"].prefix
    assert result.returncode != 0
    assert "ib_async" not in _installed(prefix)
    assert "No module named 'ib_async'" in result.stderr or "ib_insync" in result.stderr
