"""``collect_market_data``: historical bars and quote snapshots into BigQuery.

Bars go to table ``bars`` and snapshots to ``quotes`` (both partitioned by day), straight from
the run, with insertId = hash(symbol, bar time, bar size, source), so a retried run writes no
duplicate row. Requests obey IB's historical pacing (``worker/broker/pacing.py``): a universe
that needs more than the 10-minute budget stops where the budget ends and the next run
continues from the stored cursor to the end of the universe, never by provoking IB's error
162 (a 162 that comes anyway stops the run the same way). An instrument IB has no contract,
bars or quote for is listed in ``missing`` with IB's answer and the rest is collected; such a
run is ``incomplete``. The outcome carries counts, not the data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.broker.pacing import Budget
from worker.envelope import canonical_json, digest
from worker.errors import ContractNotFound, DataRefused, Incomplete, IntentFailed, NoPrice
from worker.intents import trading
from worker.intents.base import Context, IntentSpec

SOURCE = "ib"


class CollectParams(BaseModel):
    """Parameters of ``collect_market_data``."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[str] = Field(
        default_factory=list, max_length=500, description="Default: the config's universe."
    )
    bar_size: str = Field("1 day", max_length=16, description="IB bar size, e.g. '1 min'.")
    duration: str = Field("5 D", max_length=16, description="IB duration, e.g. '1 D', '1 M'.")
    what_to_show: Literal["TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"] = "TRADES"
    snapshots: bool = Field(True, description="Also record a quote snapshot per instrument.")


def run(ctx: Context, params: CollectParams) -> dict[str, Any]:
    """Continue the universe from the cursor; stop at the pacing budget and say so."""
    if ctx.books is None or ctx.rows is None:
        raise IntentFailed("collect_market_data needs the books and BigQuery rows")
    rules = trading.rules(ctx)
    universe = [_spec(i) for i in (params.symbols or rules.universe)]
    if not universe:
        return {"instruments": 0, "note": "no symbols given and no universe configured"}
    name = "collect:" + digest(canonical_json([universe, params.model_dump()]))[:16]
    start = int(ctx.books.cursor(name).get("next", 0)) % len(universe)
    done: dict[str, Any] = {"bars": 0, "quotes": 0, "started_at": start, "missing": []}
    position = start
    try:
        for position in range(start, len(universe)):  # a continued run finishes the round
            _collect_one(ctx, universe[position], params, rules.market_data_type, done)
    except Budget as exc:
        ctx.books.save_cursor(name, {"next": position})
        resume = universe[position]["symbol"]
        return _checked({**done, "complete": False, "continues_at": resume, "reason": str(exc)})
    ctx.books.save_cursor(name, {"next": 0})
    return _checked({**done, "complete": True, "instruments": len(universe)})


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    """A run that got nothing for some instrument is not a plain success (what it collected
    stays collected): failed, ``incomplete``, the whole result in the details."""
    if result["missing"]:
        symbols = [m["symbol"] for m in result["missing"]]
        raise Incomplete(f"no data for {symbols}; the rest was collected", {"result": result})
    return result


def _collect_one(
    ctx: Context, spec: dict[str, Any], params: CollectParams, data_type: int, done: dict
) -> None:
    """One instrument; one IB has no contract or data for is listed in ``missing`` (IB's
    answer with it) and the universe goes on."""
    try:
        _collect(ctx, spec, params, data_type, done)
    except (ContractNotFound, DataRefused, NoPrice) as exc:
        done["missing"].append({"symbol": spec["symbol"], "code": exc.code, "message": str(exc)})


def _collect(
    ctx: Context, spec: dict[str, Any], params: CollectParams, data_type: int, done: dict
) -> None:
    contract = trading.contract(ctx, spec)
    bars = ctx.broker.call(
        lambda gw: gw.bars(contract, params.duration, params.bar_size, params.what_to_show),
        ctx.timeout,
    )
    rows = [_bar_row(contract, params, bar) for bar in bars]
    _write(ctx, "bars", rows, [_bar_id(contract, params, r) for r in rows])
    done["bars"] += len(rows)
    if params.snapshots:
        quote = trading.quote(ctx, contract, data_type)
        trading.price_or_fail(quote, contract["symbol"])  # no row for a quote with nothing in it
        taken = ctx.broker.call(lambda gw: gw.now(), ctx.timeout).astimezone(UTC)
        row = _quote_row(contract, quote, taken)
        _write(ctx, "quotes", [row], [digest(row["symbol"], row["taken_at"], "snapshot")[:32]])
        done["quotes"] += 1


def _write(ctx: Context, table: str, rows: list[dict[str, Any]], ids: list[str]) -> None:
    if ctx.rows is not None and rows:
        ctx.rows.insert(table, rows, ids)


def _spec(item: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(item, str):
        return {"symbol": item, "sec_type": "STK", "exchange": "SMART", "currency": "USD"}
    return {"sec_type": "STK", "exchange": "SMART", "currency": "USD", **item}


def _bar_row(contract: dict[str, Any], params: CollectParams, bar: dict[str, Any]) -> dict:
    return {
        "symbol": contract["symbol"],
        "con_id": contract["con_id"],
        "bar_size": params.bar_size,
        "what_to_show": params.what_to_show,
        "source": SOURCE,
        **bar,
    }


def _bar_id(contract: dict[str, Any], params: CollectParams, row: dict[str, Any]) -> str:
    return digest(contract["symbol"], row["time"], params.bar_size, SOURCE)[:32]


def _quote_row(contract: dict[str, Any], quote: dict[str, Any], taken: datetime) -> dict:
    fields = {k: quote.get(k) for k in ("bid", "ask", "last", "close", "market_data_type")}
    return {
        "symbol": contract["symbol"],
        "con_id": contract["con_id"],
        "taken_at": taken.isoformat(),
        "source": SOURCE,
        **fields,
    }


SPEC = IntentSpec(
    name="collect_market_data",
    params=CollectParams,
    run=run,
    description="Historical bars and quote snapshots into BigQuery, within IB's pacing.",
)
