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

BUILDS = ("gateway-image.yaml", "worker-image.yaml", "worker-deploy.yaml")
FIXTURES = {name: name.removesuffix(".yaml").replace("-", "_") for name in BUILDS}
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
    build = request.getfixturevalue(FIXTURES[name])
    # Cloud Build's default is 10 minutes, too short for image builds and the test suite.
    assert _seconds(build["timeout"]) > 600
    assert build["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    assert build["options"]["substitutionOption"] == "MUST_MATCH"
    assert build["substitutions"]["_GCP_REGION"]
    assert build["substitutions"]["_IMAGE_REPO_ID"] == "cloud-run-repo"
    assert all(step.get("id") for step in build["steps"])


@pytest.mark.parametrize("name", BUILDS)
def test_builder_images_are_pinned(name: str, request: pytest.FixtureRequest) -> None:
    build = request.getfixturevalue(FIXTURES[name])
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


@pytest.mark.parametrize("name", ["gateway-image.yaml", "worker-image.yaml"])
def test_builds_check_the_pins_before_anything_else(name: str, request) -> None:
    build = request.getfixturevalue(FIXTURES[name])
    first = build["steps"][0]
    assert first["id"] == "check-inputs"
    commands = [line for line in _script(first).splitlines() if line not in ("-c", "")]
    check = 'bash gateway-image/check-pins.sh "${_VERSIONS_FILE}"'
    assert commands[:2] == ["set -euo pipefail", check]
    waits = _waits(build)
    for step in build["steps"][1:]:
        assert "check-inputs" in _before(waits, step["id"]), step["id"]


def test_gateway_build_uses_the_shared_script(gateway_image: dict[str, Any]) -> None:
    build = _script(_steps(gateway_image)["build"])
    assert 'bash gateway-image/cloudbuild-gateway.sh "${_IMAGE}" "${_CHANNEL}"' in build
    assert gateway_image["substitutions"]["_CHANNEL"] == "stable"
    assert gateway_image["substitutions"]["_IMAGE"].endswith("/${_IMAGE_REPO_ID}/ib-gateway")


def test_gateway_versions_file_exists(gateway_image: dict[str, Any]) -> None:
    versions = REPO / gateway_image["substitutions"]["_VERSIONS_FILE"]
    assert versions.is_file(), f"{versions} (the pins passed as build arguments) is missing"


def _waits(build: dict[str, Any]) -> dict[str, set[str]]:
    """Each step's prerequisites: its waitFor, or (Cloud Build's default) every earlier step."""
    order = [step["id"] for step in build["steps"]]
    return {
        step["id"]: set(step.get("waitFor", order[: order.index(step["id"])]))
        for step in build["steps"]
    }


def _before(waits: dict[str, set[str]], step: str) -> set[str]:
    """Every step that must finish before `step` starts (transitively)."""
    seen: set[str] = set()
    todo = list(waits[step])
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(waits[current])
    return seen


def test_worker_build_orders_gateway_tests_build_deploy(worker_image: dict[str, Any]) -> None:
    waits = _waits(worker_image)
    assert set(waits) == {
        "check-inputs",
        "gateway",
        "fetch-uv",
        "test",
        "wheel",
        "build",
        "push",
        "deploy",
    }
    # The gateway image is a step before the worker build: no second trigger to race.
    assert {"check-inputs", "gateway", "test", "wheel"} <= _before(waits, "build")
    assert {"build", "push", "test"} <= _before(waits, "deploy")
    assert _before(waits, "gateway") == {"check-inputs"}


def test_worker_build_defaults(worker_image: dict[str, Any]) -> None:
    subs = worker_image["substitutions"]
    # The earlier system's names still work: _TRADING_MODE (paper only here), _MY_IMAGE_TAG.
    assert subs["_DEPLOY_MODE"] == "${_TRADING_MODE}"
    assert subs["_TRADING_MODE"] == "paper"
    assert subs["_MY_IMAGE_TAG"] == "latest"
    assert subs["_CHANNEL"] == "stable"
    assert subs["_REPO"] == "${_GCP_REGION}-docker.pkg.dev/${PROJECT_ID}/${_IMAGE_REPO_ID}"
    assert worker_image["images"] == ["${_REPO}/ib-worker:${COMMIT_SHA}"]


def test_worker_tests_run_with_java_emulators_and_constraints(worker_image: dict[str, Any]) -> None:
    test = _steps(worker_image)["test"]
    assert re.fullmatch(
        r"gcr\.io/google\.com/cloudsdktool/google-cloud-cli:\d+\.\d+\.\d+-emulators", test["name"]
    )
    script = _script(test)
    assert "pytest -q tests" in script
    # What ships: the image installs with constraints.txt, so the tests do too.
    assert "--constraint constraints.txt -e '.[ib_async,sim,test,dev]'" in script
    # Tools stay outside /workspace, the Docker build context.
    assert {"name": "ci-tools", "path": "/ci-tools"} in test["volumes"]


def test_worker_image_inputs(worker_image: dict[str, Any]) -> None:
    steps = _steps(worker_image)
    assert "bash worker-image/build-wheel.sh dist" in _script(steps["wheel"])
    build = _script(steps["build"])
    assert '< "${_VERSIONS_FILE}"' in build
    assert "--file worker-image/Dockerfile" in build


def test_worker_builds_on_the_gateway_of_this_commit(worker_image: dict[str, Any]) -> None:
    steps = _steps(worker_image)
    gateway = _script(steps["gateway"])
    assert 'bash gateway-image/cloudbuild-gateway.sh "${_REPO}/ib-gateway" "${_CHANNEL}"' in gateway
    assert "> /workspace/gateway-image.ref" in gateway
    assert 'GATEWAY_IMAGE=$$(cat /workspace/gateway-image.ref)"' in _script(steps["build"])


def test_worker_build_deploys_paper_only(worker_image: dict[str, Any]) -> None:
    steps = _steps(worker_image)
    assert "{{index .RepoDigests 0}}" in _script(steps["push"])
    deploy = _script(steps["deploy"])
    assert 'bash cloudbuild/deploy.sh "${_DEPLOY_MODE}" "${_GCP_REGION}"' in deploy
    assert "paper|'') ;;" in _script(steps["check-inputs"])  # never live from here


def test_deploy_build_deploys_a_resolved_digest_only(worker_deploy: dict[str, Any]) -> None:
    assert [step["id"] for step in worker_deploy["steps"]] == ["check-inputs", "resolve", "deploy"]
    resolve = _script(_steps(worker_deploy)["resolve"])
    assert '"${_REPO}/ib-worker:${_SOURCE_TAG}"' in resolve
    assert "sha256:*) ;;" in resolve
    deploy = _script(_steps(worker_deploy)["deploy"])
    assert 'bash cloudbuild/deploy.sh "${_TRADING_MODE}" "${_GCP_REGION}"' in deploy
    assert worker_deploy["substitutions"]["_SOURCE_TAG"] == "paper"
    assert worker_deploy["substitutions"]["_TRADING_MODE"] == "live"


def test_worker_dockerfile_takes_the_gateway_image() -> None:
    dockerfile = REPO / "worker-image" / "Dockerfile"
    assert re.search(r"^ARG GATEWAY_IMAGE\b", dockerfile.read_text(), re.MULTILINE)


def test_triggers_pass_only_substitutions_the_builds_define(
    root, worker_image: dict[str, Any], worker_deploy: dict[str, Any]
) -> None:
    # MUST_MATCH fails a build whose trigger passes a substitution the file does not define.
    builds = {"worker_build": worker_image, "worker_deploy": worker_deploy}
    for name, build in builds.items():
        trigger = root.resource("google_cloudbuild_trigger", name)
        assert set(trigger["substitutions"]) <= set(build["substitutions"]), name
        # Every trigger names the repository terraform manages (a project may rename it).
        subs = trigger["substitutions"]
        assert subs["_IMAGE_REPO_ID"] == "${var.artifact_registry_repository_id}", name
        assert subs["_GCP_REGION"] == "${var.region}", name
    assert root.resource("google_cloudbuild_trigger", "worker_build")["filename"] == (
        "cloudbuild/worker-image.yaml"
    )
    deploy = root.resource("google_cloudbuild_trigger", "worker_deploy")
    assert deploy["git_file_source"][0]["path"] == "cloudbuild/worker-deploy.yaml"


def test_no_trigger_builds_the_gateway_beside_the_worker(root) -> None:
    triggers = root.resources("google_cloudbuild_trigger")
    assert set(triggers) == {"worker_build", "worker_deploy"}
    assert "gateway-image" not in str(triggers["worker_build"].get("included_files", ""))
