"""Run the Cloud Build step scripts in bash, substituted as Cloud Build would, with a stub docker.

This checks what YAML structure tests cannot: the `$$` escaping, that every pin in
gateway-image/versions.env becomes one build argument (values with spaces intact), the tags,
and that bad inputs stop the build.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .tfload import REPO

SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Z_][A-Z0-9_]*)\}")
STUB_DOCKER = '#!/bin/sh\nfor arg in "$@"; do printf "%s\\n" "$arg"; done >> "$DOCKER_LOG"\n'


def substitute(script: str, values: dict[str, str]) -> str:
    """Apply Cloud Build substitutions: ${NAME} from `values`, $$ to a literal $."""
    assert not re.search(r"(?<!\$)\$[A-Za-z_]", script.replace("$$", "")), "bare $NAME"
    return SUBSTITUTION.sub(lambda m: "$" if m.group(0) == "$$" else values[m.group(1)], script)


def _values(build: dict[str, Any], **overrides: str) -> dict[str, str]:
    values = {"PROJECT_ID": "demo-project", "COMMIT_SHA": "0123abc", **build["substitutions"]}
    values.update(overrides)
    # dynamicSubstitutions: derived values may refer to others.
    for key, value in values.items():
        values[key] = SUBSTITUTION.sub(lambda m: values[m.group(1)], value)
    return values


def _run_step(
    build: dict[str, Any], step_id: str, tmp_path: Path, **overrides: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    step = next(step for step in build["steps"] if step["id"] == step_id)
    script = substitute(step["args"][1], _values(build, **overrides))
    script = script.replace("/workspace/", f"{tmp_path}/")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(STUB_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    log = tmp_path / "docker.log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DOCKER_LOG": str(log)}
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, log.read_text().splitlines() if log.exists() else []


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "gateway-image" / "versions.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pins[key] = value
    return pins


def _build_args(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--build-arg"]


@pytest.fixture(autouse=True)
def _needs_versions_file() -> None:
    if not (REPO / "gateway-image" / "versions.env").is_file():
        pytest.skip("gateway-image/versions.env is not in the tree yet")


def test_gateway_build_passes_every_pin(gateway_build: dict[str, Any], tmp_path: Path) -> None:
    result, argv = _run_step(gateway_build, "build", tmp_path, _CHANNEL="latest")
    assert result.returncode == 0, result.stderr
    args = _build_args(argv)
    for key, value in _pins().items():
        assert f"{key}={value}" in args, key
    # The channel chosen for this build overrides the file's default (last one wins).
    assert args[-1] == "IB_GATEWAY_CHANNEL=latest"
    image = "us-east4-docker.pkg.dev/demo-project/cloud-run-repo/ib-gateway"
    assert f"{image}:latest-0123abc" in argv
    assert f"{image}:latest" in argv
    assert argv[-1] == "gateway-image"


def test_worker_build_uses_gateway_digest_and_pins(
    worker_build: dict[str, Any], tmp_path: Path
) -> None:
    ref = "us-east4-docker.pkg.dev/demo-project/cloud-run-repo/ib-gateway@sha256:" + "a" * 64
    (tmp_path / "gateway-image.ref").write_text(ref + "\n")
    result, argv = _run_step(worker_build, "build", tmp_path, _TRADING_MODE="live")
    assert result.returncode == 0, result.stderr
    args = _build_args(argv)
    assert f"GATEWAY_IMAGE={ref}" in args
    assert f"WORKER_APT_PACKAGES={_pins()['WORKER_APT_PACKAGES']}" in args
    repo = "us-east4-docker.pkg.dev/demo-project/cloud-run-repo"
    assert f"{repo}/ib-worker:0123abc" in argv
    assert f"{repo}/ib-worker:latest" in argv


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("worker-image.yaml", {"_TRADING_MODE": "prod"}),
        ("worker-image.yaml", {"COMMIT_SHA": ""}),
        ("gateway-image.yaml", {"_CHANNEL": "beta"}),
        ("gateway-image.yaml", {"COMMIT_SHA": ""}),
    ],
)
def test_bad_inputs_stop_the_build(
    name: str, overrides: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    build = request.getfixturevalue(name.split("-")[0] + "_build")
    result, _ = _run_step(build, "check-inputs", tmp_path, **overrides)
    assert result.returncode == 2, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["worker-image.yaml", "gateway-image.yaml"])
def test_good_inputs_pass(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    build = request.getfixturevalue(name.split("-")[0] + "_build")
    result, _ = _run_step(build, "check-inputs", tmp_path)
    assert result.returncode == 0, result.stderr
