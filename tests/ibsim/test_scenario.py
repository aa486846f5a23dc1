"""Scenario loading: built-in files, paths, validation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ibsim import scenario
from ibsim.market import Catalog


def test_builtin_names() -> None:
    assert {"default", "multi_currency", "futures", "two_accounts"} <= set(scenario.available())


def test_default_is_one_usd_paper_account() -> None:
    sc = scenario.load()
    assert sc.name == "default"
    (account,) = sc.accounts
    assert account.id == "DU1234567"
    assert account.base_currency == "USD"
    assert account.cash["USD"] > 500_000
    assert len(account.positions) >= 2
    assert sc.options.reject_day_mkt_when_closed is False


@pytest.mark.parametrize("name", scenario.available())
def test_every_builtin_resolves_its_instruments(name: str) -> None:
    sc = scenario.load(name)
    catalog = Catalog.builtin(extra_stocks=sc.extra_stocks)
    for account in sc.accounts:
        assert account.id.startswith("DU")
        for position in account.positions:
            catalog.find(position.instrument)


def test_multi_currency_and_two_accounts_shapes() -> None:
    multi = scenario.load("multi_currency").accounts[0]
    assert multi.base_currency == "EUR"
    assert {"EUR", "USD", "GBP", "JPY"} <= set(multi.cash)
    assert [a.id for a in scenario.load("two_accounts").accounts] == ["DU1111111", "DU2222222"]


def test_load_by_path_with_all_options(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "seed: 9\n"
        "clock_start: 2026-11-24T15:00:00Z\n"
        "price_seeds: {SPY: 500}\n"
        "accounts:\n"
        "  - id: DU7654321\n"
        "    cash: {usd: 1000}\n"
        "    positions:\n"
        "      - [SPY, 10, 480.5]\n"
        "      - {instrument: MES, quantity: 1, avg_cost: 30000}\n"
        "options:\n"
        "  reject_day_mkt_when_closed: true\n"
        "  partial_fill_size: 50\n"
        "  commissions: {stock_minimum: 1.0}\n"
        "  margin: {stock_initial: 0.5}\n"
    )
    sc = scenario.load(path)
    assert sc.name == "mine"
    assert sc.seed == 9
    assert sc.clock_start == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert sc.accounts[0].cash == {"USD": 1000.0}
    assert sc.accounts[0].positions[0] == scenario.PositionSpec("SPY", 10.0, 480.5)
    assert sc.accounts[0].positions[1].avg_cost == 30000.0
    assert sc.options.partial_fill_size == {"STK": 50.0, "FUT": 50.0, "CASH": 50.0}
    assert sc.options.commissions.stock_minimum == 1.0
    assert sc.options.margin.stock_initial == 0.5
    assert sc.options.reject_day_mkt_when_closed is True
    assert scenario.load(str(path)) == sc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accounts: []\n", "at least one account"),
        ("accounts:\n  - id: U1234567\n", "paper account"),
        ("accounts:\n  - id: DU1234567\n  - id: DU1234567\n", "duplicate"),
        ("acounts: []\n", "unknown keys"),
        ("accounts:\n  - id: DU1234567\n    csh: {}\n", "unknown keys"),
        ("accounts:\n  - id: DU1234567\noptions: {fills: 1}\n", "unknown keys"),
        ("accounts:\n  - id: DU1234567\noptions: {margin: {x: 1}}\n", "unknown keys"),
        ("- 1\n- 2\n", "mapping"),
    ],
)
def test_invalid_scenarios(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        scenario.load(path)


def test_missing_scenario() -> None:
    with pytest.raises(FileNotFoundError, match="built-in"):
        scenario.load("no_such_scenario")
