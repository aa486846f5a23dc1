"""Scenarios: the accounts, prices and broker options an ibsim run starts from.

A scenario is a YAML file; the built-in ones live in ``ibsim/scenarios/`` and are loaded by name
(``default``, ``multi_currency``, ``futures``, ``two_accounts``, ``large_universe``). Unknown keys
are errors, so a typo never silently falls back to a default. Example::

    seed: 7
    clock_start: 2026-11-24T15:00:00Z      # optional; omitted = the host's time
    price_seeds: {SPY: 600, EUR.USD: 1.08}
    extra_stocks: {prefix: U, count: 120}  # optional; synthetic US stocks U001..U120
    accounts:
      - id: DU1234567
        base_currency: USD
        cash: {USD: 1000000}
        positions:
          - {instrument: SPY, quantity: 100, avg_price: 580.0}   # or avg_cost (x multiplier)
    options:
      reject_day_mkt_when_closed: false
      partial_fill_size: {STK: 1000, FUT: 20, CASH: 1000000}
      commissions: {stock_per_share: 0.0035}
      margin: {stock_initial: 0.25}
      live_market_data: true         # false: 354 to types 1/2, delayed data to 3/4
      delayed_market_data: true      # with live false, false too: 10168 to 3/4 (no data at all)

``extra_stocks`` adds ``count`` (1 to 1000) synthetic US stocks named ``<prefix><NNN>`` (a prefix
of 1 to 4 uppercase letters, the number zero-padded to three digits) to the catalog, for tests
that need a larger universe than the built-in one; they quote around 100 unless ``price_seeds``
names them (see :func:`ibsim.catalog.synthetic_stocks`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

SCENARIO_DIR = Path(__file__).parent / "scenarios"
_ACCOUNT_ID = re.compile(r"^DU\d{5,8}$")
_STOCK_PREFIX = re.compile(r"[A-Z]{1,4}")
MAX_EXTRA_STOCKS = 1000


@dataclass(frozen=True)
class PositionSpec:
    """A starting position: ``avg_price`` per unit, or ``avg_cost`` as IB reports it (per unit
    times the multiplier); the Broker turns the latter into a price once it knows the contract."""

    instrument: str | int  # symbol, FX pair, local symbol or conId (see Catalog.find)
    quantity: float
    avg_price: float = 0.0
    avg_cost: float | None = None


@dataclass(frozen=True)
class AccountSpec:
    """One paper account at the start of a run."""

    id: str
    base_currency: str = "USD"
    cash: dict[str, float] = field(default_factory=dict)
    positions: tuple[PositionSpec, ...] = ()


@dataclass(frozen=True)
class ExtraStocks:
    """Synthetic US stocks ``<prefix>001`` .. ``<prefix><count>`` added to the catalog."""

    prefix: str
    count: int


@dataclass(frozen=True)
class Commissions:
    """IB-like commission schedule (USD unless the instrument trades in another currency).

    Stocks: tiered-ish per share with a per-order minimum and a cap of a share of trade value.
    FX (IDEALPRO): basis points of the USD value with a per-order minimum. Futures: per contract.
    Options: per contract with a per-order minimum.
    """

    stock_per_share: float = 0.0035
    stock_minimum: float = 0.35
    stock_max_fraction: float = 0.01
    fx_bps: float = 0.2
    fx_minimum: float = 2.0
    future_per_contract: float = 0.62
    option_per_contract: float = 0.65
    option_minimum: float = 1.0


@dataclass(frozen=True)
class Margin:
    """Simple margin model, documented in ``ibsim/ledger.py`` (Reg T-like intraday)."""

    stock_initial: float = 0.25
    stock_maintenance: float = 0.25
    future_initial: float = 2200.0  # per MES contract, in the contract's currency
    future_maintenance: float = 2000.0
    fx: float = 0.03
    buying_power_multiple: float = 4.0  # BuyingPower = multiple x AvailableFunds


@dataclass(frozen=True)
class Options:
    """Broker behaviour switches."""

    reject_day_mkt_when_closed: bool = False
    partial_fill_size: dict[str, float] = field(
        default_factory=lambda: {"STK": 1000.0, "FUT": 20.0, "CASH": 1_000_000.0}
    )
    commissions: Commissions = field(default_factory=Commissions)
    margin: Margin = field(default_factory=Margin)
    fx_odd_lot: float = 20_000.0  # IDEALPRO minimum in base currency units (below: a warning)
    live_market_data: bool = True  # the login has live data (False: delayed only, as unpaid)
    delayed_market_data: bool = True  # without live data: delayed is enabled (False: no data)


@dataclass(frozen=True)
class Scenario:
    """Everything a Broker and Market start from."""

    name: str
    accounts: tuple[AccountSpec, ...]
    seed: int = 0
    price_seeds: dict[str, float] = field(default_factory=dict)
    clock_start: datetime | None = None
    options: Options = field(default_factory=Options)
    extra_stocks: ExtraStocks | None = None


def available() -> list[str]:
    """Names of the built-in scenarios."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load(name_or_path: str | Path | None = None) -> Scenario:
    """Load a built-in scenario by name or a YAML file by path (None = "default").

    Raises:
        FileNotFoundError: no such scenario.
        ValueError: the file is not a valid scenario.
    """
    path = _locate(name_or_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a scenario is a mapping")
    return from_dict(data, name=path.stem)


def _locate(name_or_path: str | Path | None) -> Path:
    if name_or_path is None:
        return SCENARIO_DIR / "default.yaml"
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
    else:
        path = SCENARIO_DIR / f"{text}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no scenario {text!r} (built-in: {', '.join(available())})")
    return path


def from_dict(data: dict[str, Any], name: str = "custom") -> Scenario:
    """Build a Scenario from parsed YAML.

    Raises:
        ValueError: unknown keys, bad account ids, no accounts, or bad ``extra_stocks``.
    """
    known = {"seed", "price_seeds", "clock_start", "accounts", "options", "name", "extra_stocks"}
    _no_unknown(data, known, name)
    accounts = tuple(_account(a) for a in data.get("accounts") or [])
    if not accounts:
        raise ValueError(f"scenario {name}: at least one account is needed")
    if len({a.id for a in accounts}) != len(accounts):
        raise ValueError(f"scenario {name}: duplicate account ids")
    return Scenario(
        name=str(data.get("name", name)),
        accounts=accounts,
        seed=int(data.get("seed", 0)),
        price_seeds={str(k): float(v) for k, v in (data.get("price_seeds") or {}).items()},
        clock_start=_clock_start(data.get("clock_start")),
        options=_options(data.get("options") or {}),
        extra_stocks=_extra_stocks(data.get("extra_stocks"), name),
    )


def _no_unknown(data: dict[str, Any], known: set[str], where: str) -> None:
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")


def _extra_stocks(value: object, where: str) -> ExtraStocks | None:
    """Validate ``extra_stocks``: a prefix of 1-4 uppercase letters and a count of 1-1000."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"scenario {where}: extra_stocks is a mapping {{prefix: U, count: 120}}")
    _no_unknown(value, {"prefix", "count"}, "extra_stocks")
    prefix, count = value.get("prefix"), value.get("count")
    if not isinstance(prefix, str) or not _STOCK_PREFIX.fullmatch(prefix):
        raise ValueError(
            f"scenario {where}: extra_stocks prefix {prefix!r} must be 1 to 4 uppercase letters"
        )
    # bool is an int to Python, but "count: true" is a mistake, not a count of one.
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_EXTRA_STOCKS:
        raise ValueError(
            f"scenario {where}: extra_stocks count {count!r} must be a whole number "
            f"from 1 to {MAX_EXTRA_STOCKS}"
        )
    return ExtraStocks(prefix=prefix, count=count)


def _clock_start(value: object) -> datetime | None:
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _account(data: dict[str, Any]) -> AccountSpec:
    _no_unknown(data, {"id", "base_currency", "cash", "positions"}, "account")
    account_id = str(data.get("id", ""))
    if not _ACCOUNT_ID.match(account_id):
        raise ValueError(f"account id {account_id!r} must be a paper account like DU1234567")
    return AccountSpec(
        id=account_id,
        base_currency=str(data.get("base_currency", "USD")).upper(),
        cash={str(k).upper(): float(v) for k, v in (data.get("cash") or {}).items()},
        positions=tuple(_position(p) for p in data.get("positions") or []),
    )


def _position(data: dict[str, Any] | list[Any]) -> PositionSpec:
    if isinstance(data, list):
        instrument, quantity, avg_price = data
        return PositionSpec(instrument, float(quantity), float(avg_price))
    _no_unknown(data, {"instrument", "quantity", "avg_price", "avg_cost"}, "position")
    cost = data.get("avg_cost")
    return PositionSpec(
        instrument=data["instrument"],
        quantity=float(data["quantity"]),
        avg_price=float(data.get("avg_price", 0.0)),
        avg_cost=None if cost is None else float(cost),
    )


def _options(data: dict[str, Any]) -> Options:
    known = {f.name for f in dataclasses.fields(Options)}
    _no_unknown(data, known, "options")
    values = dict(data)
    if "commissions" in values:
        values["commissions"] = _nested(Commissions, values["commissions"])
    if "margin" in values:
        values["margin"] = _nested(Margin, values["margin"])
    if "partial_fill_size" in values:
        values["partial_fill_size"] = _chunks(values["partial_fill_size"])
    return Options(**values)


def _nested(cls: type, data: dict[str, Any]) -> Any:
    _no_unknown(data, {f.name for f in dataclasses.fields(cls)}, cls.__name__.lower())
    return cls(**{k: float(v) for k, v in data.items()})


def _chunks(value: object) -> dict[str, float]:
    if isinstance(value, dict):
        return {str(k).upper(): float(v) for k, v in value.items()}
    size = float(value)  # one number applies to every security type
    return {"STK": size, "FUT": size, "CASH": size}
