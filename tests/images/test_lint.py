"""hadolint and shellcheck over the images' Dockerfiles and scripts (both must be clean)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.images.conftest import REPO

BIN = Path(sys.executable).parent
DOCKERFILES = [REPO / "gateway-image" / "Dockerfile", REPO / "worker-image" / "Dockerfile"]
SCRIPTS = sorted(
    [
        *(REPO / "gateway-image").rglob("*.sh"),
        *(REPO / "worker-image").rglob("*.sh"),
        *(REPO / "tests" / "images" / "stubs").iterdir(),
    ]
)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    result = _run(str(BIN / "hadolint"), "--no-color", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_clean() -> None:
    result = _run(str(BIN / "shellcheck"), "--external-sources", *map(str, SCRIPTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_are_executable() -> None:
    for script in SCRIPTS:
        if script.name not in {"gateway-lib.sh", "credentials.sh", "proc-lib.sh"}:
            assert script.stat().st_mode & 0o111, script
