"""terraform fmt, version bounds and checkov over terraform/."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.tools import missing

from .tfeval import terraform
from .tfload import MODULE, REPO, TERRAFORM, TerraformDir

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # fmt needs no providers or network; CHECKPOINT_DISABLE stops terraform's version check.
    env = {**os.environ, "CHECKPOINT_DISABLE": "1"}
    return subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_terraform_fmt() -> None:
    tool = terraform("needed for fmt -check")
    result = _run(tool, "fmt", "-check", "-recursive", "-diff", "terraform/", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", [TERRAFORM, MODULE], ids=["root", "module"])
def test_versions_are_bounded(path) -> None:
    settings = TerraformDir.load(path).blocks["terraform"][0]
    assert settings["required_version"] == ">= 1.5"
    google = settings["required_providers"][0]["google"]
    assert google["source"] == "hashicorp/google"
    lower, upper = (part.strip() for part in google["version"].split(","))
    assert re.fullmatch(r">= ?\d+\.\d+(\.\d+)?", lower)
    assert re.fullmatch(r"< ?\d+\.\d+(\.\d+)?", upper)


def test_checkov_passes_with_zero_failed_checks() -> None:
    if not CHECKOV.exists():
        missing(
            "checkov lives in its own virtualenv (.venv-checkov, bc-python-hcl2 clashes with "
            "python-hcl2); create it with `make .venv-checkov/.installed`"
        )
    result = _run(
        str(CHECKOV),
        *("-d", "terraform", "--framework", "terraform", "--quiet", "--compact"),
        # No network here: do not try to download Prisma Cloud guideline mappings.
        "--skip-download",
        timeout=300,
    )
    summary = re.search(
        r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", result.stdout
    )
    assert summary, result.stdout[-2000:] + result.stderr[-2000:]
    passed, failed, _skipped = map(int, summary.groups())
    assert failed == 0, result.stdout
    assert result.returncode == 0, result.stdout[-2000:]
    assert passed > 0
