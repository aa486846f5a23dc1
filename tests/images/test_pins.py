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
    # Names only: an exact Debian version is gone from the archive at the next point release.
    "DOWNLOAD_APT_PACKAGES": r"[a-z0-9.+-]+( [a-z0-9.+-]+)*",
    "GATEWAY_APT_PACKAGES": r"[a-z0-9.+-]+( [a-z0-9.+-]+)*",
    "WORKER_APT_PACKAGES": r"[a-z0-9.+-]+( [a-z0-9.+-]+)*",
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
    # tzdata for TZ and the restart times (Debian 12 slim has none); Xvfb, jq, tini at run time.
    assert {"tzdata", "xvfb", "jq", "tini"} <= set(pins["GATEWAY_APT_PACKAGES"].split())


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


# A fake install4j installer: lays out the gateway and the JRE it "chose", as IB's do.
#   stable (10.45): the JRE under an i4j_jres folder (as root: /usr/local/i4j_jres)
#   latest (10.48+): the JRE under the installer's temporary directory, next to the installer
FAKE_INSTALLER = """#!/bin/sh
[ "$1" = -q ] && [ "$2" = -dir ] || exit 9
mkdir -p "$3/jars" "$3/.install4j" && echo -Xmx768m > "$3/ibgateway.vmoptions"
case "$FAKE_JRE_LAYOUT" in
stable) jre="$FAKE_I4J_JRES/Oda-jK0QgTEmVssfllLP/17.0.10.0.101" ;;
latest) jre="$(dirname "$0")/i4j_jre_42/jre" ;;
*) exit 0 ;;
esac
mkdir -p "$jre/bin" "$jre/lib"
cat > "$jre/bin/java" <<'JAVA'
#!/bin/sh
echo 'openjdk version "17.0.10"' >&2
exit "${FAKE_JAVA_STATUS:-0}"
JAVA
chmod +x "$jre/bin/java"
echo modules > "$jre/lib/modules"
echo "$jre" > "$3/.install4j/inst_jre.cfg"
echo installed
"""


@pytest.fixture
def artifacts(tmp_path: Path) -> dict[str, str]:
    """A fake gateway installer and IBC zip served from file:// URLs, with their pins."""
    installer = tmp_path / "installer.sh"
    installer.write_text(FAKE_INSTALLER)
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
        "GATEWAY_JRE": str(tmp_path / "opt-ibgateway-jre"),
        "FAKE_JRE_LAYOUT": "latest",
        "FAKE_I4J_JRES": str(tmp_path / "usr-local-i4j_jres"),
        "PATH": "/usr/bin:/bin",
        "TMPDIR": str(tmp_path / "tmp"),
    }


def _install(env: dict[str, str]) -> subprocess.CompletedProcess:
    Path(env["TMPDIR"]).mkdir(exist_ok=True)
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
    assert 'openjdk version "17.0.10"' in log  # the copied java ran
    assert result.stderr.count("verified") == 2
    assert list(Path(artifacts["TMPDIR"]).iterdir()) == []  # the installer's temp dir is gone


@pytest.mark.parametrize("layout", ["stable", "latest"])
def test_install_keeps_the_jre_the_installer_chose(artifacts: dict[str, str], layout: str) -> None:
    artifacts["FAKE_JRE_LAYOUT"] = layout
    result = _install(artifacts)
    assert result.returncode == 0, result.stderr
    jre = Path(artifacts["GATEWAY_JRE"])
    # Where the runtime stage copies it from, with the cfg IBC reads pointing there.
    assert (jre / "bin" / "java").stat().st_mode & 0o111
    assert (jre / "lib" / "modules").is_file()
    install4j = Path(artifacts["TWS_PATH"]) / "ibgateway" / "1037" / ".install4j"
    assert (install4j / "inst_jre.cfg").read_text() == f"{jre}\n"
    assert "JRE from " in result.stderr
    # IBC's own lookup (ibcstart.sh, read_from_config): the first line + /bin/java must exist.
    first_line = (install4j / "inst_jre.cfg").read_text().splitlines()[0]
    assert Path(first_line, "bin", "java").is_file()


def test_install_rewrites_a_preferred_jre_cfg_too(artifacts: dict[str, str]) -> None:
    # pref_jre.cfg wins over inst_jre.cfg in IBC's lookup: it must not point at a lost JRE.
    installer = Path(artifacts["IB_GATEWAY_LATEST_URL"].removeprefix("file://"))
    text = installer.read_text().replace(
        "echo installed", 'echo /gone > "$3/.install4j/pref_jre.cfg"\necho installed'
    )
    installer.write_text(text)
    artifacts["IB_GATEWAY_LATEST_SHA256"] = hashlib.sha256(text.encode()).hexdigest()
    result = _install(artifacts)
    assert result.returncode == 0, result.stderr
    install4j = Path(artifacts["TWS_PATH"]) / "ibgateway" / "1037" / ".install4j"
    assert (install4j / "pref_jre.cfg").read_text() == f"{artifacts['GATEWAY_JRE']}\n"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"FAKE_JRE_LAYOUT": "none"}, "the installer recorded no usable JRE"),
        ({"FAKE_JAVA_STATUS": "1"}, "does not run (java -version failed"),
    ],
    ids=["no jre", "java does not run"],
)
def test_install_fails_without_a_working_jre(
    artifacts: dict[str, str], change: dict[str, str], message: str
) -> None:
    result = _install({**artifacts, **change})
    assert result.returncode == 70
    assert message in result.stderr


def test_runtime_stage_copies_the_jre_and_checks_it() -> None:
    text = (GATEWAY / "Dockerfile").read_text()
    jre = re.search(r"GATEWAY_JRE=(\S+)", text).group(1)
    assert f"COPY --from=download {jre}/ {jre}/" in text
    runtime = text.split("AS download", 1)[1].split("\nFROM ", 1)[1]
    assert f"{jre}/bin/java -version" in runtime
    # Xvfb runs as the user: the socket folder exists, root-owned and sticky.
    assert "install -d -m 1777 -o root -g root /tmp/.X11-unix" in runtime


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
