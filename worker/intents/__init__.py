"""The intent registry: name -> IntentSpec. One module per intent."""

from __future__ import annotations

from typing import Any

from worker.intents import place_order, summary
from worker.intents.base import Context, IntentSpec

REGISTRY: dict[str, IntentSpec] = {spec.name: spec for spec in (summary.SPEC, place_order.SPEC)}

__all__ = ["REGISTRY", "Context", "IntentSpec", "json_schemas"]


def json_schemas() -> dict[str, Any]:
    """JSON Schema of every intent's params, keyed by intent name (docs, ``ib-worker schema``)."""
    return {name: spec.params.model_json_schema() for name, spec in sorted(REGISTRY.items())}
