"""yamllint and structure of cloudbuild/gateway-image.yaml and cloudbuild/worker-image.yaml."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .tfload import CLOUDBUILD, REPO

BUILDS = ("gateway-image.yaml", "worker-image.yaml")
# Substitutions Cloud Build itself provides; anything else must be defined in the file.
BUILT_IN = {"PROJECT_ID", "COMMIT_SHA", "SHORT_SHA", "BUILD_ID", "LOCATION"}
# An exact version (e.g. 24.0.9, 528.0.0-emulators, 0.6.14-bookworm-slim) or a digest.
PINNED = re.compile(r"^[\w.\-/]+(:\d+(\.\d+)+[\w.\-]*|@sha256:[0-9a-f]{64})$")
SUBSTITUTION = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)\}")


def _script(step: dict[str, Any]) -> str:
    return "\n".join(str(arg) for arg in step.get("args", []))


def _steps(build: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in build["steps"]}


def _seconds(timeout: str) -> int:
    match = re.fullmatch(r"(\d+)s", timeout)
    assert match, timeout
    return int(match.group(1))


def test_yamllint() -> None:
    # yamllint is installed next to the interpreter running the tests.
    yamllint = Path(sys.executable).parent / "yamllint"
    result = subprocess.run(
        [str(yamllint), "-s", "-c", str(CLOUDBUILD / ".yamllint.yaml"), "."],
        cwd=CLOUDBUILD,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", BUILDS)
def test_common_settings(name: str, request: pytest.FixtureRequest) -> None:
    build = request.getfixturevalue(name.split("-")[0] + "_build")
    # Cloud Build's default is 10 minutes, too short for image builds and the test suite.
    assert _seconds(build["timeout"]) > 600
    assert build["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    assert build["options"]["substitutionOption"] == "MUST_MATCH"
    assert build["substitutions"]["_GCP_REGION"]
    assert build["substitutions"]["_IMAGE_REPO_ID"] == "cloud-run-repo"
    assert all(step.get("id") for step in build["steps"])


@pytest.mark.parametrize("name", BUILDS)
def test_builder_images_are_pinned(name: str, request: pytest.FixtureRequest) -> None:
    build = request.getfixturevalue(name.split("-")[0] + "_build")
    for step in build["steps"]:
        assert PINNED.match(step["name"]), f"{step['id']}: {step['name']} is not pinned"


@pytest.mark.parametrize("name", BUILDS)
def test_substitutions_are_defined_and_documented(name: str) -> None:
    text = (CLOUDBUILD / name).read_text()
    build = yaml.safe_load(text)
    defined = set(build["substitutions"])
    header = text.split("\nsubstitutions:", 1)[0]
    for key in defined:
        assert key.startswith("_"), key
        assert re.search(rf"^#\s+{key}\s", header, re.MULTILINE), f"{key} undocumented"
    body = text.split("\nsubstitutions:", 1)[1]
    for used in set(SUBSTITUTION.findall(body)):
        assert used in defined | BUILT_IN, f"${{{used}}} is neither defined nor built in"


@pytest.mark.parametrize("name", BUILDS)
def test_no_secrets_in_build_logs(name: str) -> None:
    text = (CLOUDBUILD / name).read_text()
    for forbidden in ("availableSecrets", "secretEnv", "set -x", "IB_CREDENTIALS", "PASSWORD"):
        assert forbidden not in text, forbidden


def test_gateway_build_uses_pinned_versions_and_tags(gateway_build: dict[str, Any]) -> None:
    steps = _steps(gateway_build)
    build = _script(steps["build"])
    assert '< "${_VERSIONS_FILE}"' in build
    assert "--build-arg" in build
    assert '--tag "${_IMAGE}:${_CHANNEL}-${COMMIT_SHA}"' in build
    assert '--tag "${_IMAGE}:${_CHANNEL}"' in build
    assert gateway_build["substitutions"]["_CHANNEL"] == "stable"
    assert gateway_build["substitutions"]["_IMAGE"].endswith("/${_IMAGE_REPO_ID}/ib-gateway")
    assert gateway_build["images"] == [
        "${_IMAGE}:${_CHANNEL}-${COMMIT_SHA}",
        "${_IMAGE}:${_CHANNEL}",
    ]


def test_gateway_versions_file_exists(gateway_build: dict[str, Any]) -> None:
    versions = REPO / gateway_build["substitutions"]["_VERSIONS_FILE"]
    if not (REPO / "gateway-image" / "Dockerfile").is_file():
        pytest.skip("gateway-image/Dockerfile is not in the tree yet")
    assert versions.is_file(), f"{versions} (the pins passed as build arguments) is missing"


def test_worker_build_order(worker_build: dict[str, Any]) -> None:
    order = [step["id"] for step in worker_build["steps"]]
    assert order == [
        "check-inputs",
        "fetch-uv",
        "test",
        "wheel",
        "resolve-gateway",
        "build",
        "push",
        "deploy",
    ]


def test_worker_defaults(worker_build: dict[str, Any]) -> None:
    subs = worker_build["substitutions"]
    assert subs["_MY_IMAGE_TAG"] == "latest"
    assert subs["_TRADING_MODE"] == "paper"
    assert subs["_REPO"] == "${_GCP_REGION}-docker.pkg.dev/${PROJECT_ID}/${_IMAGE_REPO_ID}"
    assert worker_build["images"] == [
        "${_REPO}/ib-worker:${COMMIT_SHA}",
        "${_REPO}/ib-worker:${_MY_IMAGE_TAG}",
    ]


def test_worker_tests_run_with_java_and_emulators(worker_build: dict[str, Any]) -> None:
    test = _steps(worker_build)["test"]
    assert re.fullmatch(
        r"gcr\.io/google\.com/cloudsdktool/google-cloud-cli:\d+\.\d+\.\d+-emulators", test["name"]
    )
    assert "pytest -q tests" in _script(test)
    # Tools stay outside /workspace, the Docker build context.
    assert {"name": "ci-tools", "path": "/ci-tools"} in test["volumes"]


def test_worker_image_inputs(worker_build: dict[str, Any]) -> None:
    steps = _steps(worker_build)
    assert "uv build --wheel --out-dir dist" in _script(steps["wheel"])
    build = _script(steps["build"])
    assert '< "${_VERSIONS_FILE}"' in build
    assert "--file worker-image/Dockerfile" in build


def test_worker_builds_on_the_gateway_digest(worker_build: dict[str, Any]) -> None:
    steps = _steps(worker_build)
    resolve = _script(steps["resolve-gateway"])
    assert "gcloud artifacts docker images describe" in resolve
    assert "ib-gateway@$$digest" in resolve
    assert "sha256:*" in resolve  # refuses to go on without a digest
    assert 'GATEWAY_IMAGE=$$(cat /workspace/gateway-image.ref)"' in _script(steps["build"])


def test_worker_deploys_the_pushed_digest(worker_build: dict[str, Any]) -> None:
    steps = _steps(worker_build)
    assert "{{index .RepoDigests 0}}" in _script(steps["push"])
    deploy = _script(steps["deploy"])
    assert 'gcloud run services update "ib-${_TRADING_MODE}"' in deploy
    assert '--image="$$(cat /workspace/worker-image.ref)"' in deploy
    assert '--region="${_GCP_REGION}"' in deploy


def test_worker_checks_the_trading_mode(worker_build: dict[str, Any]) -> None:
    check = _script(_steps(worker_build)["check-inputs"])
    assert "paper|live) ;;" in check
    assert "exit 2" in check


def test_worker_dockerfile_takes_the_gateway_image(worker_build: dict[str, Any]) -> None:
    dockerfile = REPO / "worker-image" / "Dockerfile"
    if not dockerfile.is_file():
        pytest.skip("worker-image/Dockerfile is not in the tree yet")
    assert re.search(r"^ARG GATEWAY_IMAGE\b", dockerfile.read_text(), re.MULTILINE)


def test_triggers_pass_only_substitutions_the_builds_define(
    root, gateway_build: dict[str, Any], worker_build: dict[str, Any]
) -> None:
    # MUST_MATCH fails a build whose trigger passes a substitution the file does not define.
    triggers = {
        "gateway_image": gateway_build,
        "worker_image": worker_build,
    }
    for name, build in triggers.items():
        trigger = root.resource("google_cloudbuild_trigger", name)
        assert set(trigger["substitutions"]) <= set(build["substitutions"]), name
        assert trigger["filename"] == f"cloudbuild/{name.replace('_', '-')}.yaml"
