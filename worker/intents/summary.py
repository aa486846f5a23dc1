"""``summary``: account values, portfolio, open orders and today's fills of one account."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.intents.base import Context, IntentSpec

Section = Literal["values", "portfolio", "open_orders", "fills"]
DEFAULT_TAGS = (
    "NetLiquidation",
    "TotalCashValue",
    "CashBalance",
    "BuyingPower",
    "AvailableFunds",
    "ExcessLiquidity",
    "MaintMarginReq",
    "InitMarginReq",
    "GrossPositionValue",
    "UnrealizedPnL",
    "RealizedPnL",
    "ExchangeRate",
)


class SummaryParams(BaseModel):
    """Parameters of ``summary``."""

    model_config = ConfigDict(extra="forbid")

    sections: list[Section] = Field(
        default=["values", "portfolio", "open_orders", "fills"],
        max_length=4,
        description="Which parts to include.",
    )
    tags: list[str] = Field(
        default=list(DEFAULT_TAGS),
        max_length=200,
        description="Account value tags to report; an empty list reports every tag.",
    )


def run(ctx: Context, params: SummaryParams) -> dict[str, Any]:
    """Read the account; nothing here changes broker state."""
    account = ctx.account
    wanted = set(params.sections)

    async def read(gw: Any) -> dict[str, Any]:
        result: dict[str, Any] = {"account": account}
        if "values" in wanted:
            result["values"] = _values(await gw.account_values(account), params.tags)
        if "portfolio" in wanted:
            result["portfolio"] = await gw.portfolio(account)
        if "open_orders" in wanted:
            result["open_orders"] = await gw.open_orders(account)
        if "fills" in wanted:
            result["fills"] = await gw.executions(account)
        return result

    return ctx.broker.call(read, ctx.timeout)


def _values(rows: list[dict[str, str]], tags: list[str]) -> dict[str, dict[str, str]]:
    """``{tag: {currency: value}}``, filtered by ``tags`` (all when empty)."""
    keep = set(tags)
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        if not keep or row["tag"] in keep:
            out.setdefault(row["tag"], {})[row["currency"] or "-"] = row["value"]
    return out


SPEC = IntentSpec(
    name="summary",
    params=SummaryParams,
    run=run,
    description="Account values, portfolio, open orders and today's fills of one account.",
)
