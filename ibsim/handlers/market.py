"""Market requests: contract details, market data (snapshot and streaming), historical bars."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ibsim.handlers.state import Ticker
from ibsim.messages import In
from ibsim.messages import market as msg
from ibsim.messages.requests import (
    BadRequest,
    FieldReader,
    read_contract_details,
    read_historical,
    read_mkt_data,
)
from ibsim.model import ContractQuery, Instrument, UnknownContract

if TYPE_CHECKING:
    from ibsim.session import Session

NO_DEFINITION = "No security definition has been found for the request"
HMDS = "Historical Market Data Service error message:"


def _resolve_one(s: Session, req_id: int, query: ContractQuery) -> Instrument | None:
    """The single instrument a request means, or None after answering error 200."""
    try:
        found = s.sim.market.catalog.resolve(query)
    except UnknownContract:
        s.error(req_id, 200, NO_DEFINITION)
        return None
    if len(found) > 1:
        s.error(req_id, 200, f"The contract description specified for {query.symbol} is ambiguous.")
        return None
    return found[0]


def req_contract_details(s: Session, fields: list[str]) -> None:
    """``9, 8, reqId, contract ...`` -> ``10`` per match then ``52``; unknown: error 200."""
    req = read_contract_details(fields)
    try:
        found = s.sim.market.catalog.resolve(req.contract)
    except UnknownContract:
        s.error(req.req_id, 200, NO_DEFINITION)
        return
    for inst in found:
        s.send(msg.contract_details(req.req_id, inst))
    s.send(msg.contract_details_end(req.req_id))


def req_mkt_data(s: Session, fields: list[str]) -> None:
    """``1, 11, reqId, contract, ..., snapshot`` -> marketDataType, ticks, [snapshotEnd]."""
    req = read_mkt_data(fields)
    inst = _resolve_one(s, req.req_id, req.contract)
    if inst is None:
        return
    delayed = s.market_data_type in (3, 4)
    s.send(msg.market_data_type(req.req_id, s.market_data_type))
    ticker = Ticker(inst, delayed)
    send_quote(s, req.req_id, ticker)
    if req.snapshot:
        s.send(msg.tick_snapshot_end(req.req_id))
    else:
        s.subs.tickers[req.req_id] = ticker


def send_quote(s: Session, req_id: int, ticker: Ticker) -> None:
    """Send the current quote on a subscription if it differs from the last one sent."""
    quote = s.sim.market.quote(ticker.instrument)
    if quote == ticker.last:
        return
    ticker.last = quote
    epoch = int(s.sim.clock.now().timestamp())
    for fields in msg.quote_ticks(req_id, quote, epoch, delayed=ticker.delayed):
        s.send(fields)


def cancel_mkt_data(s: Session, fields: list[str]) -> None:
    s.subs.tickers.pop(FieldReader(fields, 2).int(), None)


def req_historical_data(s: Session, fields: list[str]) -> None:
    """``20, reqId, contract, ...`` -> ``17`` with every bar; pacing violations are 162."""
    req = read_historical(fields)
    inst = _resolve_one(s, req.req_id, req.contract)
    if inst is None:
        return
    now = s.sim.clock.now()
    end = parse_end(req.end, now)
    identity = (inst.con_id, req.end, req.duration, req.bar_size, req.what_to_show, req.use_rth)
    family = (inst.con_id, req.contract.exchange, req.what_to_show)
    violation = s.sim.historical_pacing.check(now, identity, family)
    if violation:
        s.error(req.req_id, 162, violation)
        return
    try:
        bars = s.sim.market.bars(
            inst,
            end=end,
            duration=req.duration,
            bar_size=req.bar_size,
            what_to_show=req.what_to_show,
            use_rth=req.use_rth,
            format_date=req.format_date,
        )
    except ValueError as exc:
        s.error(req.req_id, 162, f"{HMDS}{exc}")
        return
    start = bars[0].date if bars else ""
    s.send(msg.historical_data(req.req_id, start, f"{end:%Y%m%d %H:%M:%S}", bars))


def parse_end(text: str, now: datetime) -> datetime:
    """IB's endDateTime: empty (now), ``YYYYMMDD-HH:MM:SS`` (UTC), or ``YYYYMMDD HH:MM:SS
    [zone]`` (no zone: UTC, ibsim's gateway time zone)."""
    text = text.strip()
    if not text:
        return now
    if len(text) >= 17 and text[8] == "-":
        return _strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    parts = text.split(" ")
    if len(parts) == 1:  # a bare date
        return _strptime(parts[0], "%Y%m%d").replace(hour=23, minute=59, second=59, tzinfo=UTC)
    when = _strptime(f"{parts[0]} {parts[1]}", "%Y%m%d %H:%M:%S")
    zone = parts[2] if len(parts) > 2 else "UTC"
    try:
        return when.replace(tzinfo=ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRequest(f"unknown time zone {zone!r}", 162) from exc


def _strptime(text: str, fmt: str) -> datetime:
    try:
        return datetime.strptime(text, fmt)
    except ValueError as exc:
        raise BadRequest(f"{HMDS}invalid end date/time {text!r}", 162) from exc


def cancel_historical_data(s: Session, fields: list[str]) -> None:
    """Bars are sent at once, so there is never anything left to cancel."""


HANDLERS = {
    In.REQ_CONTRACT_DATA: req_contract_details,
    In.REQ_MKT_DATA: req_mkt_data,
    In.CANCEL_MKT_DATA: cancel_mkt_data,
    In.REQ_HISTORICAL_DATA: req_historical_data,
    In.CANCEL_HISTORICAL_DATA: cancel_historical_data,
}
