"""Names shared with terraform, loaded once from ``names.json`` (see that file's ``_doc``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

NAMES_FILE = Path(__file__).with_name("names.json")


@cache
def names() -> dict[str, Any]:
    """The parsed names file."""
    return json.loads(NAMES_FILE.read_text(encoding="utf-8"))


def pubsub_name(kind: str, mode: str) -> str:
    """A Pub/Sub topic or subscription name for one trading mode, e.g. ``intents_topic``."""
    return names()["pubsub"][kind].format(mode=mode)


def event_type(outcome: str) -> str:
    """The reverse-DNS CloudEvent type of one outcome (succeeded, failed, rejected, skipped)."""
    return f"{names()['event_type_prefix']}.{outcome}"


# The earlier Cloud Run IB system's hyphenated intent names (peer-systems.md) keep working.
INTENT_ALIASES = {
    "cash-balancer": "cash_balancer",
    "close-all": "close_all",
    "collect-market-data": "collect_market_data",
    "trade-reconciliation": "trade_reconciliation",
    "cancel-orders": "cancel_orders",
    "place-order": "place_order",
}


def canonical_intent(name: str) -> str:
    """Our name for an intent name, the earlier system's spelling included."""
    return INTENT_ALIASES.get(name, name)
