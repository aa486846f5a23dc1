"""``cancel_orders``: cancel our open orders and wait until IB confirms each one.

"Ours" are the orders whose orderRef starts with ``ibw:`` (every order the journal sends);
orders placed by hand or by other tools are never touched. Select them by orderRef prefix, by
order id, or ``all_ours``. A cancel that IB does not confirm in time makes the run retry
(``order_state_unknown``): a cancellation is never assumed. Runs with the kill switch on.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.errors import IntentFailed
from worker.intents.base import Context, IntentSpec
from worker.journal import REF_PREFIX

OURS = f"{REF_PREFIX}:"


class CancelOrdersParams(BaseModel):
    """Parameters of ``cancel_orders``; at least one selection is required."""

    model_config = ConfigDict(extra="forbid")

    order_ref_prefix: str | None = Field(
        None, min_length=len(OURS) + 1, max_length=40, description="e.g. ibw:268531a2b8c3"
    )
    order_ids: list[int] = Field(default_factory=list, max_length=500)
    all_ours: bool = Field(False, description="Every open order the journal sent.")
    wait_seconds: float = Field(15.0, gt=0, le=120, description="For IB's confirmations.")

    @model_validator(mode="after")
    def _something_selected(self) -> CancelOrdersParams:
        if not (self.order_ref_prefix or self.order_ids or self.all_ours):
            raise ValueError("select orders: order_ref_prefix, order_ids or all_ours=true")
        if self.order_ref_prefix and not self.order_ref_prefix.startswith(OURS):
            raise ValueError(f"order_ref_prefix must start with {OURS!r}: only ours are cancelled")
        return self


def run(ctx: Context, params: CancelOrdersParams) -> dict[str, Any]:
    """Select our open orders, cancel them all, wait for every confirmation."""
    if ctx.orders is None:
        raise IntentFailed("cancel_orders needs the order journal")
    chosen = [o for o in ours(ctx) if _selected(o, params)]
    legs = ctx.orders.cancel(chosen, params.wait_seconds)
    return {"dry_run": ctx.dry_run, "cancelled": legs, "count": len(legs)}


def ours(ctx: Context) -> list[dict[str, Any]]:
    """This account's open orders that the journal sent (all clients' open orders)."""
    orders = ctx.broker.call(lambda gw: gw.open_orders(ctx.account), ctx.timeout)
    return [o for o in orders if str(o.get("order_ref") or "").startswith(OURS)]


def _selected(order: dict[str, Any], params: CancelOrdersParams) -> bool:
    if params.all_ours or order.get("order_id") in params.order_ids:
        return True
    prefix = params.order_ref_prefix
    return prefix is not None and str(order["order_ref"]).startswith(prefix)


SPEC = IntentSpec(
    name="cancel_orders",
    params=CancelOrdersParams,
    run=run,
    description="Cancel our open orders (by orderRef prefix, ids, or all) and await IB's word.",
    places_orders=True,
    reduces_risk=True,
)
