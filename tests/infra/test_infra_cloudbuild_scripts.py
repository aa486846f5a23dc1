"""Run the Cloud Build steps in bash, substituted as Cloud Build would, with stub docker and gcloud.

This checks what YAML structure tests cannot: the `$$` escaping, the placeholder check that runs
before anything else, that every pin in gateway-image/versions.env becomes one build argument
(values with spaces intact), that the gateway image is built only when its inputs changed and is
used by digest, what is deployed where, and that bad inputs stop the build.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .tfload import REPO

SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Z_][A-Z0-9_]*)\}")
DIGEST = "sha256:" + "a" * 64
# Stub docker: logs each call (one argument per line, then "--"); `manifest inspect` succeeds
# when STUB_MANIFEST=exists; `inspect` prints the image by a digest.
STUB_DOCKER = f"""#!/bin/bash
{{ printf '%s\\n' docker "$@"; echo --; }} >> "$STUB_LOG"
case "$1 ${{2:-}}" in
"manifest inspect") [[ ${{STUB_MANIFEST:-}} == exists ]] ;;
"inspect --format") ref=${{4%:*}}; echo "$ref@{DIGEST}" ;;
esac
"""
# Stub gcloud: logs each call; `images describe` prints STUB_DIGEST.
STUB_GCLOUD = """#!/bin/bash
{ printf '%s\\n' gcloud "$@"; echo --; } >> "$STUB_LOG"
if [[ $1 == artifacts && $3 == images && $4 == describe ]]; then echo "${STUB_DIGEST:-}"; fi
"""
REPO_PATH = "us-east4-docker.pkg.dev/demo-project/cloud-run-repo"


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


def _calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    calls, current = [], []
    for line in log.read_text().splitlines():
        if line == "--":
            calls.append(current)
            current = []
        else:
            current.append(line)
    return calls


def run_step(
    build: dict[str, Any],
    step_id: str,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    **subs: str,
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """Run one step's script; returns the result and the stub calls this run made."""
    step = next(step for step in build["steps"] if step["id"] == step_id)
    script = substitute(step["args"][1], _values(build, **subs))
    script = script.replace("/workspace/", f"{tmp_path}/")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("docker", STUB_DOCKER), ("gcloud", STUB_GCLOUD)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    full_env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log), **(env or {})}
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, _calls(log)


def _pins(path: Path = REPO / "gateway-image" / "versions.env") -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pins[key] = value
    return pins


@pytest.fixture
def pinned(tmp_path: Path) -> Path:
    """versions.env with every placeholder replaced, as update-pins.sh would leave it."""
    path = tmp_path / "versions.env"
    text = (REPO / "gateway-image" / "versions.env").read_text()
    path.write_text(text.replace("0" * 64, "b" * 64))
    return path


def _build_args(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--build-arg"]


@pytest.mark.parametrize("name", ["worker-image.yaml", "gateway-image.yaml"])
def test_placeholder_pins_stop_the_build_first(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # The committed pins are placeholders (no internet where they were written).
    build = request.getfixturevalue(name.removesuffix(".yaml").replace("-", "_"))
    result, calls = run_step(build, "check-inputs", tmp_path)
    assert result.returncode == 78
    assert "BASE_IMAGE_DIGEST is a placeholder: run gateway-image/update-pins.sh" in result.stderr
    assert calls == []


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("worker-image.yaml", {"_DEPLOY_MODE": "live"}),
        ("worker-image.yaml", {"_TRADING_MODE": "live"}),  # an earlier system's live trigger
        ("worker-image.yaml", {"_CHANNEL": "beta"}),
        ("worker-image.yaml", {"COMMIT_SHA": ""}),
        ("gateway-image.yaml", {"_CHANNEL": "beta"}),
        ("gateway-image.yaml", {"COMMIT_SHA": ""}),
        ("worker-deploy.yaml", {"_TRADING_MODE": "prod"}),
        ("worker-deploy.yaml", {"_SOURCE_TAG": "latest"}),
    ],
)
def test_bad_inputs_stop_the_build(
    name: str, overrides: dict[str, str], tmp_path: Path, pinned: Path, request
) -> None:
    build = request.getfixturevalue(name.removesuffix(".yaml").replace("-", "_"))
    if "_VERSIONS_FILE" in build["substitutions"]:
        overrides = {"_VERSIONS_FILE": str(pinned), **overrides}
    result, _ = run_step(build, "check-inputs", tmp_path, **overrides)
    assert result.returncode == 2, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["worker-image.yaml", "gateway-image.yaml", "worker-deploy.yaml"])
def test_good_inputs_pass(name: str, tmp_path: Path, pinned: Path, request) -> None:
    build = request.getfixturevalue(name.removesuffix(".yaml").replace("-", "_"))
    subs = {"_VERSIONS_FILE": str(pinned)} if "_VERSIONS_FILE" in build["substitutions"] else {}
    result, _ = run_step(build, "check-inputs", tmp_path, **subs)
    assert result.returncode == 0, result.stderr


def test_gateway_step_builds_a_new_gateway_with_every_pin(
    worker_image: dict[str, Any], tmp_path: Path, pinned: Path
) -> None:
    result, calls = run_step(
        worker_image, "gateway", tmp_path, _VERSIONS_FILE=str(pinned), _CHANNEL="latest"
    )
    assert result.returncode == 0, result.stderr
    build = next(call for call in calls if call[1] == "build")
    args = _build_args(build)
    for key, value in _pins(pinned).items():
        assert f"{key}={value}" in args, key
    assert args[-1] == "IB_GATEWAY_CHANNEL=latest"  # the chosen channel overrides the file's
    tag = build[build.index("--tag") + 1]
    assert re.fullmatch(rf"{REPO_PATH}/ib-gateway:latest-[0-9a-f]{{16}}", tag)
    assert f"{REPO_PATH}/ib-gateway:latest" in build
    assert [call[1:] for call in calls if call[1] == "push"] == [
        ["push", tag],
        ["push", f"{REPO_PATH}/ib-gateway:latest"],
    ]
    ref = (tmp_path / "gateway-image.ref").read_text().strip()
    assert ref == f"{REPO_PATH}/ib-gateway@{DIGEST}"


def test_gateway_step_reuses_an_unchanged_gateway(
    worker_image: dict[str, Any], tmp_path: Path, pinned: Path
) -> None:
    exists = {"STUB_MANIFEST": "exists"}
    result, calls = run_step(worker_image, "gateway", tmp_path, exists, _VERSIONS_FILE=str(pinned))
    assert result.returncode == 0, result.stderr
    assert [call[1] for call in calls] == ["manifest", "pull", "inspect"]
    ref = (tmp_path / "gateway-image.ref").read_text().strip()
    assert ref == f"{REPO_PATH}/ib-gateway@{DIGEST}"


def _gateway_tag(worker_image: dict[str, Any], tmp_path: Path, versions: Path) -> str:
    _, calls = run_step(worker_image, "gateway", tmp_path, _VERSIONS_FILE=str(versions))
    return next(call for call in calls if call[1] == "manifest")[-1]


def test_gateway_tag_names_the_gateway_inputs(
    worker_image: dict[str, Any], tmp_path: Path, pinned: Path
) -> None:
    first = _gateway_tag(worker_image, tmp_path / "a", pinned)
    assert first == _gateway_tag(worker_image, tmp_path / "b", pinned)
    pinned.write_text(pinned.read_text().replace("IBC_VERSION=3.24.2", "IBC_VERSION=3.24.3"))
    assert _gateway_tag(worker_image, tmp_path / "c", pinned) != first


def test_gateway_step_refuses_placeholder_pins(
    worker_image: dict[str, Any], tmp_path: Path
) -> None:
    result, calls = run_step(worker_image, "gateway", tmp_path)
    assert result.returncode == 78
    assert calls == []


def test_worker_build_uses_gateway_digest_and_pins(
    worker_image: dict[str, Any], tmp_path: Path
) -> None:
    ref = f"{REPO_PATH}/ib-gateway@{DIGEST}"
    (tmp_path / "gateway-image.ref").write_text(ref + "\n")
    result, calls = run_step(worker_image, "build", tmp_path)
    assert result.returncode == 0, result.stderr
    args = _build_args(calls[0])
    assert f"GATEWAY_IMAGE={ref}" in args
    assert f"WORKER_APT_PACKAGES={_pins()['WORKER_APT_PACKAGES']}" in args
    assert f"{REPO_PATH}/ib-worker:0123abc" in calls[0]
    assert f"{REPO_PATH}/ib-worker:built" in calls[0]
    assert f"{REPO_PATH}/ib-worker:latest" in calls[0]


def test_worker_build_deploys_the_pushed_digest_to_paper(
    worker_image: dict[str, Any], tmp_path: Path
) -> None:
    ref = f"{REPO_PATH}/ib-worker@{DIGEST}"
    (tmp_path / "worker-image.ref").write_text(ref + "\n")
    result, calls = run_step(worker_image, "deploy", tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls == [
        ["gcloud", "run", "services", "update", "ib-paper", "--region=us-east4",
         f"--image={ref}", "--quiet"],
        ["gcloud", "artifacts", "docker", "tags", "add", ref, f"{REPO_PATH}/ib-worker:paper",
         "--quiet"],
    ]  # fmt: skip


def test_worker_build_without_a_deploy_mode_only_pushes(
    worker_image: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "worker-image.ref").write_text(f"{REPO_PATH}/ib-worker@{DIGEST}\n")
    result, calls = run_step(worker_image, "deploy", tmp_path, _DEPLOY_MODE="")
    assert result.returncode == 0, result.stderr
    assert calls == []


def test_live_deploy_resolves_the_digest_paper_runs(
    worker_deploy: dict[str, Any], tmp_path: Path
) -> None:
    result, calls = run_step(worker_deploy, "resolve", tmp_path, env={"STUB_DIGEST": DIGEST})
    assert result.returncode == 0, result.stderr
    assert calls[0][:5] == ["gcloud", "artifacts", "docker", "images", "describe"]
    assert calls[0][5] == f"{REPO_PATH}/ib-worker:paper"
    ref = (tmp_path / "worker-image.ref").read_text().strip()
    assert ref == f"{REPO_PATH}/ib-worker@{DIGEST}"
    result, calls = run_step(worker_deploy, "deploy", tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls[0][:5] == ["gcloud", "run", "services", "update", "ib-live"]
    assert f"--image={ref}" in calls[0]
    assert calls[1][-2] == f"{REPO_PATH}/ib-worker:live"


def test_live_deploy_stops_without_a_paper_digest(
    worker_deploy: dict[str, Any], tmp_path: Path
) -> None:
    result, _ = run_step(worker_deploy, "resolve", tmp_path, env={"STUB_DIGEST": ""})
    assert result.returncode == 1
    assert "has the build deployed it yet?" in result.stderr


@pytest.mark.parametrize(
    "ref",
    [f"{REPO_PATH}/ib-worker:latest", f"{REPO_PATH}/ib-gateway@{DIGEST}", ""],
    ids=["tag", "other image", "empty"],
)
def test_deploy_refuses_anything_but_a_worker_digest(tmp_path: Path, ref: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(STUB_GCLOUD)
    (bin_dir / "gcloud").chmod(0o755)
    result = subprocess.run(
        ["bash", str(REPO / "cloudbuild" / "deploy.sh"), "live", "us-east4", ref],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(tmp_path / "log")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert not (tmp_path / "log").exists()
