"""start-gateway.sh under bash with stub IBC, Xvfb and java: config, errors, signals, secrets."""

from __future__ import annotations

import json
import signal
import stat
from pathlib import Path

import pytest

from tests.images.conftest import PASSWORD, START_GATEWAY, USERNAME, Sandbox, secret_holders

CONFIG_CASES = {
    "paper defaults": (
        {},
        {
            "TradingMode": "paper",
            "ReadOnlyApi": "no",
            "OverrideTwsApiPort": "",
            "ExistingSessionDetectedAction": "primaryoverride",
            "AcceptIncomingConnectionAction": "reject",
            "TrustedTwsApiClientIPs": "",
            "BypassOrderPrecautions": "yes",
            "AutoRestartTime": "11:59 PM",
            "ReloginAfterSecondFactorAuthenticationTimeout": "yes",
            "SecondFactorAuthenticationTimeout": "180",
            "CommandServerPort": "7462",
            "BindAddress": "127.0.0.1",
            "AcceptNonBrokerageAccountWarning": "yes",
        },
    ),
    "live is read-only by default": (
        {"TRADING_MODE": "live"},
        {"TradingMode": "live", "ReadOnlyApi": "yes", "OverrideTwsApiPort": ""},
    ),
    "live opted in to orders": (
        {"TRADING_MODE": "LIVE", "READ_ONLY_API": "false"},
        {"TradingMode": "live", "ReadOnlyApi": "no"},
    ),
    "non-default port": ({"IB_PORT": "4010"}, {"OverrideTwsApiPort": "4010"}),
    "earlier names": (
        {"TWS_PORT": "4011", "COMMAND_SERVER_PORT": "7000", "COLD_RESTART_TIME": "07:05"},
        {"OverrideTwsApiPort": "4011", "CommandServerPort": "7000", "ColdRestartTime": "07:05"},
    ),
    "overrides": (
        {
            "EXISTING_SESSION_DETECTED_ACTION": "secondary",
            "TWS_ACCEPT_INCOMING": "accept",
            "BYPASS_WARNING": "no",
            "AUTO_RESTART_TIME": "06:30 AM",
            "RELOGIN_AFTER_TWOFA_TIMEOUT": "no",
            "TWOFA_DEVICE": "IB Key",
            "TWOFA_TIMEOUT": "200",
            "TWS_MASTER_CLIENT_ID": "7",
        },
        {
            "ExistingSessionDetectedAction": "secondary",
            "AcceptIncomingConnectionAction": "accept",
            "BypassRedirectOrderWarning": "no",
            "AutoRestartTime": "06:30 AM",
            "ReloginAfterSecondFactorAuthenticationTimeout": "no",
            "SecondFactorDevice": "IB Key",
            "SecondFactorAuthenticationTimeout": "200",
            "OverrideTwsMasterClientID": "7",
        },
    ),
}


@pytest.mark.parametrize(("env", "expected"), CONFIG_CASES.values(), ids=CONFIG_CASES.keys())
def test_config_rendered_from_env(
    sandbox: Sandbox, env: dict[str, str], expected: dict[str, str]
) -> None:
    result = sandbox.gateway(**env)
    assert result.returncode == 0, result.stderr
    config = sandbox.config()
    assert {key: config[key] for key in expected} == expected
    assert config["IbLoginId"] == USERNAME
    assert config["IbPassword"] == PASSWORD
    assert stat.S_IMODE(sandbox.ini.stat().st_mode) == 0o600


def test_ibc_launched_with_paths_and_no_credentials(sandbox: Sandbox) -> None:
    result = sandbox.gateway(TRADING_MODE="live")
    assert result.returncode == 0, result.stderr
    args = (sandbox.root / "ibcstart.args").read_text().splitlines()
    home = sandbox.root / "home"
    assert args == [
        "1030",
        "--gateway",
        f"--tws-path={home}/Jts",
        f"--tws-settings-path={home}/Jts",
        f"--ibc-path={sandbox.root}/ibc",
        f"--ibc-ini={home}/ibc/config.ini",
        "--mode=live",
        "--on2fatimeout=restart",
    ]
    assert (sandbox.root / "ini.mode").read_text().strip() == "600"
    assert "java start display=:97" in sandbox.names()
    assert "TimeZone=America/New_York" in (home / "Jts" / "jts.ini").read_text()


def test_existing_jts_ini_kept(sandbox: Sandbox) -> None:
    jts = sandbox.root / "home" / "Jts" / "jts.ini"
    jts.write_text("[IBGateway]\nsaved=by-gateway\n")
    assert sandbox.gateway().returncode == 0
    assert jts.read_text() == "[IBGateway]\nsaved=by-gateway\n"


def _without_tws(sandbox: Sandbox) -> None:
    del sandbox.env["TWS_USERID"], sandbox.env["TWS_PASSWORD"]


CREDENTIAL_CASES = {
    "json username": {"IB_CREDENTIALS_JSON": json.dumps({"username": "u1", "password": "p1"})},
    "json userid": {"IB_CREDENTIALS_JSON": json.dumps({"userid": "u1", "password": "p1"})},
    "ib pair": {"IB_USERNAME": "u1", "IB_PASSWORD": "p1"},
    "tws pair": {"TWS_USERID": "u1", "TWS_PASSWORD": "p1"},
}


@pytest.mark.parametrize("env", CREDENTIAL_CASES.values(), ids=CREDENTIAL_CASES.keys())
def test_credential_sources(sandbox: Sandbox, env: dict[str, str]) -> None:
    _without_tws(sandbox)
    result = sandbox.gateway(**env)
    assert result.returncode == 0, result.stderr
    assert (sandbox.config()["IbLoginId"], sandbox.config()["IbPassword"]) == ("u1", "p1")


@pytest.mark.parametrize("env", CREDENTIAL_CASES.values(), ids=CREDENTIAL_CASES.keys())
def test_credential_file_variants(sandbox: Sandbox, env: dict[str, str]) -> None:
    _without_tws(sandbox)
    files = {}
    for name, value in env.items():
        path = sandbox.root / f"secret-{name}"
        path.write_text(value + "\n")  # mounted secrets often end with a newline
        files[f"{name}_FILE"] = str(path)
    result = sandbox.gateway(**files)
    assert result.returncode == 0, result.stderr
    assert (sandbox.config()["IbLoginId"], sandbox.config()["IbPassword"]) == ("u1", "p1")


def test_username_plain_password_from_file(sandbox: Sandbox) -> None:
    _without_tws(sandbox)
    (sandbox.root / "pw").write_text("p1")
    result = sandbox.gateway(IB_USERNAME="u1", IB_PASSWORD_FILE=str(sandbox.root / "pw"))
    assert result.returncode == 0, result.stderr
    assert sandbox.config()["IbPassword"] == "p1"


ERROR_CASES = {
    "bad trading mode": ({"TRADING_MODE": "demo"}, "TRADING_MODE must be one of: live paper"),
    "two sources": ({"IB_USERNAME": "u2", "IB_PASSWORD": "p2"}, "more than one way"),
    "json and tws": (
        {"IB_CREDENTIALS_JSON": '{"username":"a","password":"b"}'},
        "more than one way",
    ),
    "var and file": ({"TWS_PASSWORD_FILE": "/dev/null"}, "both TWS_PASSWORD and TWS_PASSWORD_FILE"),
    "bad version": ({"TWS_VERSION": "latest"}, "TWS_VERSION must look like"),
    "not installed": ({"TWS_VERSION": "10.31.1a"}, "IB Gateway 1031 is not installed"),
    "bad port": ({"IB_PORT": "70000"}, "IB_PORT must be a TCP port number"),
    "bad restart time": ({"AUTO_RESTART_TIME": "23:59"}, "AUTO_RESTART_TIME must be hh:mm"),
    "bad session action": (
        {"EXISTING_SESSION_DETECTED_ACTION": "fight"},
        "EXISTING_SESSION_DETECTED_ACTION must be one of",
    ),
    "bad heap": ({"JAVA_HEAP_SIZE": "lots"}, "JAVA_HEAP_SIZE must be"),
}


@pytest.mark.parametrize(("env", "message"), ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_bad_settings_fail_fast(sandbox: Sandbox, env: dict[str, str], message: str) -> None:
    result = sandbox.gateway(**env)
    assert result.returncode == 78
    assert message in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert "ibcstart start" not in sandbox.names()


BAD_CREDENTIALS = {
    "none": ({}, "no IB credentials"),
    "json not json": (
        {"IB_CREDENTIALS_JSON": PASSWORD},
        "must give both a username and a password",
    ),
    "json without password": (
        {"IB_CREDENTIALS_JSON": json.dumps({"username": "u", "pw": PASSWORD})},
        "must give both",
    ),
    "json password not a string": (
        {"IB_CREDENTIALS_JSON": json.dumps({"username": "u", "password": [PASSWORD]})},
        "must give both",
    ),
    "missing file": ({"IB_CREDENTIALS_JSON_FILE": "/nonexistent/secret"}, "unreadable file"),
    "username only": ({"IB_USERNAME": "u"}, "must give both"),
    "control character": ({"IB_USERNAME": "u", "IB_PASSWORD": PASSWORD + "\nx"}, None),
}


@pytest.mark.parametrize(("env", "message"), BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_bad_credentials(sandbox: Sandbox, env: dict[str, str], message: str | None) -> None:
    _without_tws(sandbox)
    result = sandbox.gateway(**env)
    assert result.returncode == 78
    assert message is None or message in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert not sandbox.ini.exists()
    assert secret_holders(PASSWORD, sandbox) == []


def test_control_character_refused(sandbox: Sandbox) -> None:
    _without_tws(sandbox)
    result = sandbox.gateway(IB_USERNAME="u", IB_PASSWORD="a\rb")
    assert result.returncode == 78
    assert "contains a control character" in result.stderr


def test_password_escaped_for_java_properties(sandbox: Sandbox) -> None:
    _without_tws(sandbox)
    result = sandbox.gateway(IB_USERNAME=" u", IB_PASSWORD="a\\b=c#d é😀")
    assert result.returncode == 0, result.stderr
    assert sandbox.config()["IbLoginId"] == "\\ u"
    assert sandbox.config()["IbPassword"] == "a\\\\b=c#d \\u00E9\\uD83D\\uDE00"


VERSION_LOGS = {
    "3-digit": ("Installing IB Gateway 981\n", "981"),
    "10.30.1t": ("Welcome\nIB Gateway 10.30.1t (stable channel)\n", "1030"),
    "10.37.1l": ("Extracting ibgateway-10.37.1l-standalone-linux-x64.sh\n", "1037"),
    "install path": ("Done: /home/ibgateway/Jts/ibgateway/1019/jars\n", "1019"),
}


@pytest.mark.parametrize(("log", "major"), VERSION_LOGS.values(), ids=VERSION_LOGS.keys())
def test_version_parsed_from_install_log(sandbox: Sandbox, log: str, major: str) -> None:
    sandbox.gateway_dir.rename(sandbox.gateway_dir.with_name(major))
    (sandbox.root / "install.log").write_text(log)
    del sandbox.env["TWS_VERSION"]
    result = sandbox.gateway(TWS_INSTALL_LOG=str(sandbox.root / "install.log"))
    assert result.returncode == 0, result.stderr
    assert (sandbox.root / "ibcstart.args").read_text().splitlines()[0] == major


def test_version_missing_everywhere(sandbox: Sandbox) -> None:
    (sandbox.root / "install.log").write_text("nothing useful\n")
    del sandbox.env["TWS_VERSION"]
    result = sandbox.gateway(TWS_INSTALL_LOG=str(sandbox.root / "install.log"))
    assert result.returncode == 78
    assert "no gateway version was found in TWS_INSTALL_LOG" in result.stderr


def test_earlier_path_names_accepted(sandbox: Sandbox) -> None:
    del sandbox.env["TWS_VERSION"], sandbox.env["IBC_PATH"]
    ini = sandbox.root / "elsewhere" / "ibc.ini"
    result = sandbox.gateway(
        TWS_MAJOR_VRSN="1030",
        ibcPath=str(sandbox.root / "ibc"),
        ibcIni=str(ini),
        twsPath=str(sandbox.root / "home" / "Jts"),
    )
    assert result.returncode == 0, result.stderr
    assert f"--ibc-ini={ini}" in (sandbox.root / "ibcstart.args").read_text()
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600


def test_java_heap_and_log_path(sandbox: Sandbox) -> None:
    logs = sandbox.root / "logs"
    result = sandbox.gateway(JAVA_HEAP_SIZE="1024", LOG_PATH=str(logs))
    assert result.returncode == 0, result.stderr
    vmoptions = (sandbox.gateway_dir / "ibgateway.vmoptions").read_text().splitlines()
    assert vmoptions == ["-XX:+UseG1GC", "-Xmx1024m"]
    assert "IBC stub started" in "".join(p.read_text() for p in logs.glob("ibc-*.log"))


def test_gateway_exit_status_passed_on(sandbox: Sandbox) -> None:
    result = sandbox.gateway(STUB_JAVA="exit:3")
    assert result.returncode == 3
    assert "IBC's launcher exited with status 3" in result.stderr
    assert "xvfb term" in sandbox.names()
    assert list((sandbox.root / "tmp").iterdir()) == []


def test_sigterm_stops_ibc_and_xvfb(sandbox: Sandbox) -> None:
    proc = sandbox.start(["bash", str(START_GATEWAY)])
    sandbox.wait_event("java start")
    assert secret_holders(PASSWORD, sandbox) == []
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    names = sandbox.names()
    assert names.index("java term") < names.index("xvfb term")
    assert list((sandbox.root / "tmp").iterdir()) == []


def test_sigterm_kills_a_gateway_that_ignores_it(sandbox: Sandbox) -> None:
    proc = sandbox.start(["bash", str(START_GATEWAY)], STUB_JAVA="stubborn", IBC_STOP_TIMEOUT="0.3")
    sandbox.wait_event("java start")
    java_pid = next(pid for who, what, pid in sandbox.events() if who == "java")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "java ignored-term" in sandbox.names()
    sandbox.wait_for(lambda: not _alive(java_pid), timeout=5)


def test_sigterm_while_waiting_for_xvfb(sandbox: Sandbox) -> None:
    proc = sandbox.start(["bash", str(START_GATEWAY)], STUB_XVFB_DELAY="30")
    sandbox.wait_event("xvfb start")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "xvfb term" in sandbox.names()
    assert "ibcstart start" not in sandbox.names()


def test_secret_never_traced_logged_or_passed(sandbox: Sandbox) -> None:
    proc = sandbox.start(["bash", "-x", str(START_GATEWAY)])
    sandbox.wait_event("java start")
    assert secret_holders(PASSWORD, sandbox) == []
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    # xtrace was on before and after the secret handling, and off in between
    assert "ibgw_quiet" in err
    assert "set_java_heap" in err
    assert PASSWORD not in out + err
    assert stat.S_IMODE(sandbox.ini.stat().st_mode) == 0o600


def _alive(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"
