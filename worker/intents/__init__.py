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
# The earlier Cloud Run IB system's hyphenated names (peer-systems.md) keep working.
ALIASES = {
    "cash-balancer": "cash_balancer",
    "close-all": "close_all",
    "collect-market-data": "collect_market_data",
    "trade-reconciliation": "trade_reconciliation",
    "cancel-orders": "cancel_orders",
    "place-order": "place_order",
}

__all__ = ["ALIASES", "REGISTRY", "Context", "IntentSpec", "canonical", "json_schemas"]


def canonical(name: str) -> str:
    """Our name for an intent name, the earlier system's spelling included."""
    return ALIASES.get(name, name)


def json_schemas() -> dict[str, Any]:
    """JSON Schema of every intent's params, keyed by intent name (docs, ``ib-worker schema``)."""
    return {name: spec.params.model_json_schema() for name, spec in sorted(REGISTRY.items())}
