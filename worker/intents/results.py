"""The results intents return, as models: their JSON Schemas document the outcome events
(``docs/schemas/intent.<name>.result.json``) and tests validate real results against them.

Extra fields are allowed, so adding a field never breaks a consumer; the named ones are the
contract.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Leg(_Open):
    """One order of a run, as the journal keeps it."""

    leg_id: str
    order_ref: str = Field(description="ibw:<12 hex of hash(deployment, key)>:<leg>")
    state: str = Field(description="planned, unknown, sent, terminal, or dry_run")
    contract: dict[str, Any] = Field(default_factory=dict)
    order: dict[str, Any] = Field(default_factory=dict)
    order_id: int | None = None
    perm_id: int | None = None
    status: str | None = Field(None, description="IB's order status, e.g. Filled")
    filled: float | None = None
    avg_price: float | None = None
    commission: float | None = None
    rejected: bool | None = None
    reason: str | None = None
    adopted: bool | None = Field(None, description="Found at IB by its orderRef, not re-sent")


class Check(_Open):
    """One risk-gate rule applied (``worker/risk.py``)."""

    rule: str
    ok: bool
    limit: Any = None
    value: Any = None
    subject: str | None = None


class Summary(_Open):
    account: str
    values: dict[str, dict[str, str]] | None = None
    portfolio: list[dict[str, Any]] | None = None
    open_orders: list[dict[str, Any]] | None = None
    fills: list[dict[str, Any]] | None = None


class MarketDataFallback(_Open):
    """Why a quote came from delayed data: IB's answer refusing live data."""

    code: int = Field(description="IB error code, e.g. 354 (live data not subscribed)")
    message: str = Field(description="IB's text")


class PlaceOrder(_Open):
    legs: list[Leg]
    price: float | None = None
    price_source: str | None = Field(None, description="midpoint, last, close or limit")
    market_data_type: int | None = Field(
        None, description="Market data type of the quote priced from (1-4); none for limit"
    )
    market_data_fallback: MarketDataFallback | None = Field(
        None, description="Set when IB refused live data and delayed data priced the order"
    )
    checks: list[Check] = Field(default_factory=list)
    dry_run: bool = False


class Allocation(_Open):
    legs: list[Leg] | list[dict[str, Any]] = Field(
        description="Journal legs; planned legs when dry"
    )
    booked: int | None = Field(None, description="Executions booked to the strategies now")
    failed: list[dict[str, str]] = Field(default_factory=list, description="Frozen strategies")
    held: list[str] = Field(default_factory=list, description="Strategies without a fresh signal")
    crosses: list[dict[str, Any]] = Field(default_factory=list)
    checks: list[Check] | None = None


class Cancelled(_Open):
    cancelled: list[Leg]
    count: int
    dry_run: bool = False


class CloseAll(_Open):
    legs: list[Leg] | None = None
    plan: list[dict[str, Any]] | None = None
    cancelled: list[Leg] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)


class CashBalancer(_Open):
    legs: list[Leg] | list[dict[str, Any]]
    balances: dict[str, dict[str, float]]
    base_currency: str


class Reconciliation(_Open):
    booked: int
    executions: list[dict[str, Any]]
    unattributed_executions: list[str]
    differences: list[dict[str, Any]]
    blotter: list[dict[str, Any]]


class MissingData(_Open):
    """An instrument the run got nothing (or no quote) for."""

    symbol: str
    code: str = Field(description="contract_not_found, data_refused or no_price")
    message: str = Field(description="What was missing, with IB's code and text")


class MarketData(_Open):
    bars: int = 0
    quotes: int = 0
    complete: bool | None = None
    continues_at: str | None = None
    missing: list[MissingData] = Field(default_factory=list)


RESULTS: dict[str, type[BaseModel]] = {
    "summary": Summary,
    "place_order": PlaceOrder,
    "allocation": Allocation,
    "cancel_orders": Cancelled,
    "close_all": CloseAll,
    "cash_balancer": CashBalancer,
    "trade_reconciliation": Reconciliation,
    "collect_market_data": MarketData,
}
