"""The intent registry: name -> IntentSpec. One module per intent."""

from __future__ import annotations

from typing import Any

from worker.intents import (
    allocation,
    cancel_orders,
    cash_balancer,
    close_all,
    collect_market_data,
    place_order,
    summary,
    trade_reconciliation,
)
from worker.intents.base import Context, IntentSpec

INTENTS = (
    summary,
    place_order,
    allocation,
    cash_balancer,
    cancel_orders,
    close_all,
    collect_market_data,
    trade_reconciliation,
)
REGISTRY: dict[str, IntentSpec] = {module.SPEC.name: module.SPEC for module in INTENTS}
__all__ = ["REGISTRY", "Context", "IntentSpec", "json_schemas"]


def json_schemas() -> dict[str, Any]:
    """JSON Schema of every intent's params, keyed by intent name (docs, ``ib-worker schema``)."""
    return {name: spec.params.model_json_schema() for name, spec in sorted(REGISTRY.items())}
