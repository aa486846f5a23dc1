"""hadolint and shellcheck over the images' Dockerfiles and scripts (both must be clean)."""

from __future__ import annotations

import re
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
        *(REPO / "cloudbuild").rglob("*.sh"),
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


REFERENCED = re.compile(
    r"\b((?:gateway-image|worker-image|cloudbuild|terraform)/[\w./-]*\.(?:sh|yaml|env|tf|md|py))\b"
)
DOCS_AND_BUILDS = [
    *DOCKERFILES,
    REPO / "gateway-image" / "README.md",
    REPO / "terraform" / "README.md",
    *(REPO / "cloudbuild").glob("*.yaml"),
    *(REPO / "terraform").glob("*.tf"),
    *SCRIPTS,
]


@pytest.mark.parametrize("path", DOCS_AND_BUILDS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_named_file_exists(path: Path) -> None:
    # e.g. a Dockerfile comment naming a build script that was never written
    missing = [ref for ref in REFERENCED.findall(path.read_text()) if not (REPO / ref).exists()]
    assert missing == []
