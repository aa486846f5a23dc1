"""The broker's persisted state: one JSON file, replaced atomically on every change.

A gateway restart (``Simulator.restart(keep_state=True)``) builds a new Broker on the same
file and finds every order, execution, position, cash balance and order-id sequence as it was.
Instruments are stored by conId (plus the exchange the order named, e.g. FXCONV) and looked up
in the catalog again on load.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibsim.catalog import Catalog
from ibsim.model import ContractQuery, Fill, Instrument, Order, OrderRequest, OrderStatus

FORMAT_VERSION = 1


@dataclass
class IdBook:
    """One clientId's order ids: the next id nextValidId reports, and every id ever used."""

    next_id: int = 1
    used: set[int] = field(default_factory=set)


@dataclass
class BrokerState:
    """Everything the broker must not lose across a restart."""

    orders: dict[tuple[int, int], Order] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    ids: dict[int, IdBook] = field(default_factory=dict)
    next_perm_id: int = 100_000_001
    ledger: dict[str, Any] = field(default_factory=dict)


def write_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to ``path`` via a temporary file and os.replace (no torn files on crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(payload, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dump(state: BrokerState) -> dict[str, Any]:
    """State -> plain JSON data."""
    return {
        "version": FORMAT_VERSION,
        "next_perm_id": state.next_perm_id,
        "ids": {
            str(c): {"next_id": b.next_id, "used": sorted(b.used)} for c, b in state.ids.items()
        },
        "orders": [_order_out(o) for o in state.orders.values()],
        "fills": [_fill_out(f) for f in state.fills],
        "ledger": state.ledger,
    }


def load(data: dict[str, Any], catalog: Catalog) -> BrokerState:
    """Plain JSON data -> state.

    Raises:
        ValueError: a file written by an incompatible version.
    """
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"unsupported ibsim state version {data.get('version')!r}")
    orders = [_order_in(o, catalog) for o in data["orders"]]
    return BrokerState(
        orders={o.key: o for o in orders},
        fills=[_fill_in(f, catalog) for f in data["fills"]],
        ids={int(c): IdBook(b["next_id"], set(b["used"])) for c, b in data["ids"].items()},
        next_perm_id=int(data["next_perm_id"]),
        ledger=data["ledger"],
    )


def read(path: Path, catalog: Catalog) -> BrokerState | None:
    """The state saved at ``path``, or None when there is none yet."""
    if not path.is_file():
        return None
    return load(json.loads(path.read_text(encoding="utf-8")), catalog)


def _instrument_out(inst: Instrument) -> dict[str, Any]:
    return {"con_id": inst.con_id, "exchange": inst.exchange}


def _instrument_in(data: dict[str, Any], catalog: Catalog) -> Instrument:
    inst = catalog.by_con_id(int(data["con_id"]))
    if inst.exchange != data["exchange"]:
        inst = dataclasses.replace(inst, exchange=data["exchange"])
    return inst


def _order_out(order: Order) -> dict[str, Any]:
    raw = {f.name: getattr(order, f.name) for f in dataclasses.fields(order)}
    raw["request"] = dataclasses.asdict(order.request)
    raw["instrument"] = _instrument_out(order.instrument)
    raw["status"] = order.status.value
    return raw


def _order_in(raw: dict[str, Any], catalog: Catalog) -> Order:
    values = dict(raw)
    request = dict(values["request"])
    request["contract"] = ContractQuery(**request["contract"])
    request["algo_params"] = tuple(tuple(p) for p in request["algo_params"])
    values["request"] = OrderRequest(**request)
    values["instrument"] = _instrument_in(values["instrument"], catalog)
    values["status"] = OrderStatus(values["status"])
    return Order(**values)


def _fill_out(fill: Fill) -> dict[str, Any]:
    raw = {f.name: getattr(fill, f.name) for f in dataclasses.fields(fill)}
    raw["instrument"] = _instrument_out(fill.instrument)
    return raw


def _fill_in(raw: dict[str, Any], catalog: Catalog) -> Fill:
    values = dict(raw)
    values["instrument"] = _instrument_in(values["instrument"], catalog)
    values["order_key"] = tuple(values["order_key"])
    return Fill(**values)
