"""The pins in gateway-image/versions.env, their use in the Dockerfiles, the verified install."""

from __future__ import annotations

import hashlib
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.images.conftest import GATEWAY, REPO, SCRIPTS

VERSIONS = GATEWAY / "versions.env"
FORMATS = {
    "BASE_IMAGE": r"debian:[a-z0-9.-]+",
    "BASE_IMAGE_DIGEST": r"sha256:[0-9a-f]{64}",
    "IB_GATEWAY_CHANNEL": r"stable|latest",
    "IB_GATEWAY_STABLE_VERSION": r"10\.\d{2}\.\d+[a-z]",
    "IB_GATEWAY_LATEST_VERSION": r"10\.\d{2}\.\d+[a-z]",
    "IB_GATEWAY_STABLE_URL": r"https://\S+\.sh",
    "IB_GATEWAY_LATEST_URL": r"https://\S+\.sh",
    "IB_GATEWAY_STABLE_SHA256": r"[0-9a-f]{64}",
    "IB_GATEWAY_LATEST_SHA256": r"[0-9a-f]{64}",
    "IBC_VERSION": r"\d+\.\d+\.\d+",
    "IBC_URL": r"https://\S+/IBCLinux-\d+\.\d+\.\d+\.zip",
    "IBC_SHA256": r"[0-9a-f]{64}",
    "DOWNLOAD_APT_PACKAGES": r"([a-z0-9.+-]+=[0-9][\w.:+~-]*)( [a-z0-9.+-]+=[0-9][\w.:+~-]*)*",
    "GATEWAY_APT_PACKAGES": r"([a-z0-9.+-]+=[0-9][\w.:+~-]*)( [a-z0-9.+-]+=[0-9][\w.:+~-]*)*",
    "WORKER_APT_PACKAGES": r"([a-z0-9.+-]+=[0-9][\w.:+~-]*)( [a-z0-9.+-]+=[0-9][\w.:+~-]*)*",
}


def _pins() -> dict[str, str]:
    lines = VERSIONS.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _build_args(dockerfile: Path) -> set[str]:
    return set(re.findall(r"^ARG (\w+)", dockerfile.read_text(), flags=re.M))


def test_every_pin_present_and_well_formed() -> None:
    pins = _pins()
    assert set(pins) == set(FORMATS)
    for key, pattern in FORMATS.items():
        assert re.fullmatch(pattern, pins[key]), f"{key}={pins[key]}"
    assert pins["IBC_VERSION"] in pins["IBC_URL"]


def test_every_pin_is_a_build_arg_without_a_second_value() -> None:
    gateway, worker = GATEWAY / "Dockerfile", REPO / "worker-image" / "Dockerfile"
    used = _build_args(gateway) | _build_args(worker)
    assert set(_pins()) <= used
    for dockerfile in (gateway, worker):
        # values live only in versions.env: no ARG in a Dockerfile carries a default pin
        assert not re.search(r"^ARG \w+=.*(sha256|https://|=\d)", dockerfile.read_text(), re.M)


def test_base_image_pinned_by_digest_and_nothing_fetched_unverified() -> None:
    text = (GATEWAY / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}@${BASE_IMAGE_DIGEST}"] * 2
    assert not re.search(r"\b(curl|wget)\b|^ADD ", text, re.M)  # downloads: install-gateway.sh
    assert not re.search(r"^RUN .*apt-get upgrade", text, re.M)
    assert "sudo" not in text
    assert re.search(r"^USER \$\{APP_UID\}:\$\{APP_GID\}$", text, re.M)
    worker = (REPO / "worker-image" / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", worker, re.M) == ["${GATEWAY_IMAGE}"]
    assert worker.rstrip().splitlines()[-1].startswith("CMD ")
    assert re.findall(r"^USER (\S+)", worker, re.M)[-1] == "1000:1000"
    assert '"/usr/bin/tini", "--"' in worker


@pytest.fixture
def artifacts(tmp_path: Path) -> dict[str, str]:
    """A fake gateway installer and IBC zip served from file:// URLs, with their pins."""
    installer = tmp_path / "installer.sh"
    installer.write_text(
        '#!/bin/sh\n[ "$1" = -q ] && [ "$2" = -dir ] || exit 9\n'
        'mkdir -p "$3/jars" && echo -Xmx768m > "$3/ibgateway.vmoptions"\necho installed\n'
    )
    ibc = tmp_path / "ibc.zip"
    with zipfile.ZipFile(ibc, "w") as zf:
        zf.writestr("scripts/ibcstart.sh", "#!/bin/bash\n")
        zf.writestr("gatewaystart.sh", "#!/bin/bash\n")
        zf.writestr("IBC.jar", "jar")
    return {
        "IB_GATEWAY_CHANNEL": "latest",
        "IB_GATEWAY_STABLE_VERSION": "10.30.1t",
        "IB_GATEWAY_STABLE_URL": "file:///nonexistent",
        "IB_GATEWAY_STABLE_SHA256": "0" * 64,
        "IB_GATEWAY_LATEST_VERSION": "10.37.1l",
        "IB_GATEWAY_LATEST_URL": installer.as_uri(),
        "IB_GATEWAY_LATEST_SHA256": hashlib.sha256(installer.read_bytes()).hexdigest(),
        "IBC_VERSION": "3.24.2",
        "IBC_URL": ibc.as_uri(),
        "IBC_SHA256": hashlib.sha256(ibc.read_bytes()).hexdigest(),
        "TWS_PATH": str(tmp_path / "Jts"),
        "IBC_PATH": str(tmp_path / "opt-ibc"),
        "TWS_INSTALL_LOG": str(tmp_path / "Jts" / "tws_install.log"),
        "PATH": "/usr/bin:/bin",
        "TMPDIR": str(tmp_path),
    }


def _install(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPTS / "install-gateway.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_install_verifies_then_installs(artifacts: dict[str, str]) -> None:
    result = _install(artifacts)
    assert result.returncode == 0, result.stderr
    jts = Path(artifacts["TWS_PATH"])
    assert (jts / "ibgateway" / "1037" / "jars").is_dir()
    assert (jts / "ibgateway" / "version").read_text() == "10.37.1l\n"
    assert (Path(artifacts["IBC_PATH"]) / "scripts" / "ibcstart.sh").stat().st_mode & 0o111
    log = Path(artifacts["TWS_INSTALL_LOG"]).read_text()
    assert log.startswith("IB Gateway 10.37.1l (latest channel)\n")
    assert result.stderr.count("verified") == 2


@pytest.mark.parametrize("key", ["IB_GATEWAY_LATEST_SHA256", "IBC_SHA256"])
def test_install_refuses_a_download_with_another_checksum(
    artifacts: dict[str, str], key: str
) -> None:
    artifacts[key] = "f" * 64
    result = _install(artifacts)
    assert result.returncode == 65
    assert "sha256 mismatch" in result.stderr
    if key == "IB_GATEWAY_LATEST_SHA256":
        assert not Path(artifacts["TWS_PATH"], "ibgateway").exists()


def test_install_refuses_placeholder_pins(artifacts: dict[str, str]) -> None:
    artifacts["IB_GATEWAY_CHANNEL"] = "stable"
    result = _install(artifacts)
    assert result.returncode == 78
    assert "placeholder" in result.stderr
