"""The risk gate every order passes, and that dry runs report in full.

Limits come from the trading config's ``risk`` map (Firestore ``config/common`` merged with
``config/<mode>``). Each rule is a ``Check`` naming the rule, its limit and the value found;
a failing check refuses the order (or the whole intent) as a permanent ``risk_refused``
outcome carrying every check, or skips the intent when its market is closed and the config
says ``when_closed: skip``. The kill switch and the live opt-in are admission's pre-checks
(``admission.py``): they refuse before anything is claimed.

All figures are in the account's base currency: quantity x price x multiplier x the account's
``ExchangeRate`` for the contract's currency. Times are the gateway's clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from worker import market_hours
from worker.errors import MarketClosed, RiskRefused

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Blackout(BaseModel):
    """A window in which no new order is sent (IB's resets; tws-protocol.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = list(DAYS)
    start: time
    end: time  # exclusive; an end before the start runs past midnight into the next day
    tz: str = "America/New_York"

    def covers(self, when: datetime) -> bool:
        local = when.astimezone(ZoneInfo(self.tz))
        day, clock = DAYS[local.weekday()], local.time()
        if self.start <= self.end:
            return day in self.days and self.start <= clock < self.end
        yesterday = DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and clock >= self.start) or (
            yesterday in self.days and clock < self.end
        )


DEFAULT_BLACKOUTS = [
    Blackout(name="nightly_reset", start=time(0, 15), end=time(1, 45)),
    Blackout(name="weekend_maintenance", days=["fri"], start=time(23, 0), end=time(3, 0)),
]


class RiskConfig(BaseModel):
    """``risk.*`` in the trading config. Unset limits are not checked."""

    model_config = ConfigDict(extra="forbid")

    max_order_notional: float | None = Field(None, gt=0, description="Per order, base ccy.")
    max_position_notional: float | None = Field(
        None, gt=0, description="Per instrument after the order, base currency."
    )
    max_gross_leverage: float = Field(
        2.0, gt=0, description="Gross position value after the plan / NetLiquidation."
    )
    max_share_sum: float = Field(1.0, gt=0, description="Cap on the sum of strategy shares.")
    allowed_sec_types: list[str] = Field(["STK", "ETF", "CASH", "FUT"])
    allowed_exchanges: list[str] | None = Field(None, description="None allows any exchange.")
    when_closed: Literal["refuse", "skip"] = "refuse"
    blackouts: list[Blackout] = Field(default_factory=lambda: list(DEFAULT_BLACKOUTS))


@dataclass(frozen=True)
class Check:
    """One rule applied to one order or plan."""

    rule: str
    ok: bool
    limit: Any = None
    value: Any = None
    subject: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


@dataclass(frozen=True)
class AccountView:
    """What the gate needs to know of the account, read from the gateway once per run."""

    base_currency: str
    net_liquidation: float
    gross_position_value: float
    now: datetime
    fx: dict[str, float] = field(default_factory=dict)  # currency -> base per unit
    positions: dict[int, float] = field(default_factory=dict)  # conId -> quantity

    def to_base(self, amount: float, currency: str) -> float:
        if currency in (self.base_currency, ""):
            return amount
        rate = self.fx.get(currency)
        if rate is None:
            raise RiskRefused(f"no {currency}->{self.base_currency} rate in the account values")
        return amount * rate


@dataclass(frozen=True)
class OrderView:
    """One planned order as the gate sees it."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    currency: str
    action: str
    quantity: float
    price: float
    multiplier: float = 1.0

    @property
    def signed(self) -> float:
        return self.quantity if self.action == "BUY" else -self.quantity


class RiskGate:
    """The rules of one run (config read once per run)."""

    def __init__(self, config: RiskConfig) -> None:
        self.config = config

    def order_checks(self, order: OrderView, account: AccountView) -> list[Check]:
        """Every rule for one order, passed or not (dry runs show them all)."""
        cfg, name = self.config, order.symbol
        unit = account.to_base(order.price * order.multiplier, order.currency)
        after = account.positions.get(order.con_id, 0.0) + order.signed
        exchanges = cfg.allowed_exchanges
        return [
            Check(
                "allowed_sec_types",
                order.sec_type in cfg.allowed_sec_types,
                cfg.allowed_sec_types,
                order.sec_type,
                name,
            ),
            Check(
                "allowed_exchanges",
                exchanges is None or order.exchange in exchanges,
                exchanges,
                order.exchange,
                name,
            ),
            _at_most("max_order_notional", cfg.max_order_notional, order.quantity * unit, name),
            _at_most("max_position_notional", cfg.max_position_notional, after * unit, name),
            *self.time_checks(order.sec_type, account.now, name),
        ]

    def time_checks(self, sec_type: str, now: datetime, subject: str = "") -> list[Check]:
        """Market hours and IB's reset windows at ``now`` (the gateway's clock)."""
        open_ = market_hours.is_open(sec_type, now)
        checks = [Check("market_hours", open_, "open", "open" if open_ else "closed", subject)]
        for window in self.config.blackouts:
            inside = window.covers(now)
            span = f"{window.start:%H:%M}-{window.end:%H:%M} {window.tz}"
            checks.append(Check(f"blackout:{window.name}", not inside, span, now.isoformat()))
        return checks

    def plan_checks(self, orders: list[OrderView], account: AccountView) -> list[Check]:
        """Gross exposure after the whole plan, against NetLiquidation."""
        gross = account.gross_position_value
        for order in orders:
            unit = account.to_base(order.price * order.multiplier, order.currency)
            held = account.positions.get(order.con_id, 0.0)
            gross += abs((held + order.signed) * unit) - abs(held * unit)
        leverage = gross / account.net_liquidation if account.net_liquidation > 0 else float("inf")
        limit = self.config.max_gross_leverage
        return [Check("max_gross_leverage", leverage <= limit, limit, round(leverage, 4))]

    def enforce(self, checks: list[Check]) -> None:
        """Raise for the first failing check (every check goes into the outcome)."""
        failed = [c for c in checks if not c.ok]
        if not failed:
            return
        details = {"checks": [c.as_dict() for c in checks]}
        first = failed[0]
        text = f"{first.rule}: {first.value} against limit {first.limit}"
        subject = f" ({first.subject})" if first.subject else ""
        if first.rule == "market_hours" and self.config.when_closed == "skip":
            raise MarketClosed(f"market closed{subject}; when_closed=skip", details)
        raise RiskRefused(f"risk gate refused{subject}: {text}", details)


def _at_most(rule: str, limit: float | None, value: float, subject: str) -> Check:
    value = abs(value)
    return Check(rule, limit is None or value <= limit, limit, round(value, 2), subject)
