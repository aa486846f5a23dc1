"""What every intent is: a name, a params model, a run function and its safety class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from worker.holdings import Books
    from worker.journal import OrderJournal
    from worker.recording import Recorder


class Broker(Protocol):
    """What an intent may ask of the broker session (``worker.broker.session``)."""

    def call(self, fn: Callable[[Any], Any], timeout: float) -> Any: ...

    def status(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Context:
    """Everything an intent run may use; intents know nothing of Flask or Pub/Sub."""

    broker: Broker
    account: str
    dry_run: bool
    trading_mode: str
    timeout: float
    config: Callable[[], dict[str, Any]]
    key: str = ""
    attempt: int = 1
    orders: OrderJournal | None = None  # the ONLY way to send, modify or cancel an order
    books: Books | None = None  # strategy holdings, states and our orders' shares
    rows: Recorder | None = None  # BigQuery, for data too big for an outcome (market data)


@dataclass(frozen=True)
class IntentSpec:
    """One intent: ``run(ctx, params)`` returns the JSON-able result of the outcome event.

    ``places_orders`` marks intents that change broker state: they need the live opt-in in
    live mode, honour the kill switch, need an Idempotency-Key on direct calls and send every
    order through ``ctx.orders`` (the record's legs and recovery point).
    """

    name: str
    params: type[BaseModel]
    run: Callable[[Context, Any], dict[str, Any]]
    description: str
    places_orders: bool = False
    reduces_risk: bool = False  # close_all, cancel_orders: run even with the kill switch on
