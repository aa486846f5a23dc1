"""Pure units: JSON log lines, settings validation, the trading-config cache, error mapping."""

from __future__ import annotations

import io
import json
import logging

import pytest

from worker import errors, logs
from worker.config import SettingsError, TradingConfig, load_settings


def log_line(message: str, **fields: object) -> dict:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    with logs.bound(**fields):
        logger.warning(message)
    return json.loads(stream.getvalue())


def test_log_lines_carry_severity_trace_and_labels() -> None:
    trace = logs.trace_from_header("abc123/456;o=1", "proj")
    line = log_line("hello", trace=trace, intent="summary", key="k1", attempt=2)
    assert line["severity"] == "WARNING"
    assert line["message"] == "hello"
    assert line[logs.TRACE_KEY] == "projects/proj/traces/abc123"
    assert line[logs.LABELS_KEY] == {"intent": "summary", "key": "k1", "attempt": "2"}


@pytest.mark.parametrize("header", [None, "", "not a trace!/1", "../x"])
def test_bad_trace_headers_are_ignored(header: str | None) -> None:
    assert logs.trace_from_header(header, "p") is None


def test_secret_shaped_text_is_redacted() -> None:
    line = log_line('login {"password": "hunter2", "user": "me"} token=abc')
    assert "hunter2" not in line["message"]
    assert "abc" not in line["message"]
    assert '"user": "me"' in line["message"]


def test_settings_defaults_follow_the_trading_mode() -> None:
    live = load_settings({"TRADING_MODE": "live", "K_SERVICE": "", "DEPLOYMENT": ""})
    assert (live.ib_port, live.deployment) == (4001, "ib-live")
    assert live.allow_live_trading is False
    paper = load_settings({"TRADING_MODE": "paper", "TWS_PORT": "7497", "IB_ACCOUNT": "DU1,DU2"})
    assert paper.ib_port == 7497
    assert paper.accounts == {"DU1", "DU2"}


def test_invalid_settings_fail_fast_naming_each_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"TRADING_MODE": "yolo", "IB_CLIENT_ID": "-1", "LEASE_SECONDS": "1"})
    message = str(caught.value)
    for name in ("TRADING_MODE", "IB_CLIENT_ID", "LEASE_SECONDS"):
        assert name in message


def test_trading_config_is_reread_after_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    values = iter([{"tradingEnabled": True}, {"tradingEnabled": False}])
    clock = iter([0.0, 0.0, 5.0, 20.0, 20.0])
    monkeypatch.setattr("worker.config.time.monotonic", lambda: next(clock))
    config = TradingConfig(lambda: next(values), ttl=15)
    assert config.get() == {"tradingEnabled": True}
    assert config.get() == {"tradingEnabled": True}  # 5 s later: cached
    assert config.get() == {"tradingEnabled": False}  # 20 s later: re-read


@pytest.mark.parametrize(
    ("error", "push", "direct"),
    [
        (errors.BadInput("x"), 200, 400),
        (errors.UnknownIntent("x"), 200, 404),
        (errors.InvalidParams("x"), 200, 422),
        (errors.KeyReused("x"), 200, 422),
        (errors.RiskRefused("x"), 200, 403),
        (errors.GatewayNotReady("x"), 503, 503),
        (errors.StoreUnavailable("x"), 503, 503),
        (errors.LeaseHeld("x"), 429, 409),
        (errors.IntentTimeout("x"), 503, 504),
    ],
)
def test_one_table_maps_errors_to_http(error: errors.WorkerError, push: int, direct: int) -> None:
    assert errors.push_status(error) == push
    assert errors.direct_status(error.code) == direct
    assert error.as_dict()["retryable"] is (push >= 400)
