"""reqHistoricalData: bars at once, and with keepUpToDate the forming bar until cancelled.

IB sends historicalDataUpdate (90) for the bar being formed every few seconds (ibsim: every
5 seconds of simulation time, and only when it changed), a new bar's first update once a bar
completes, until cancelHistoricalData. keepUpToDate needs an empty endDateTime (162 otherwise).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ibsim.handlers.market import HMDS, parse_end, resolve_one
from ibsim.handlers.state import BarStream
from ibsim.messages import In
from ibsim.messages import market as msg
from ibsim.messages.requests import FieldReader, HistoricalRequest, read_historical
from ibsim.model import Bar, Instrument

if TYPE_CHECKING:
    from ibsim.session import Session

UPDATE_SECONDS = 5.0  # between two historicalDataUpdate of one request (simulation time)
DAILY = ("1 day",)


def req_historical_data(s: Session, fields: list[str]) -> None:
    """``20, reqId, contract, ...`` -> ``17`` with every bar; pacing violations are 162."""
    req = read_historical(fields)
    inst = resolve_one(s, req.req_id, req.contract)
    if inst is None:
        return
    if req.keep_up_to_date and req.end.strip():
        s.error(req.req_id, 162, f"{HMDS}End date not supported with live updates")
        return
    now = s.sim.clock.now()
    end = parse_end(req.end, now)
    if not _paced(s, req, inst, now):
        return
    bars = _bars(s, req.req_id, inst, req, end, req.duration)
    if bars is None:
        return
    start = bars[0].date if bars else ""
    s.send(msg.historical_data(req.req_id, start, f"{end:%Y%m%d %H:%M:%S}", bars))
    if req.keep_up_to_date:
        s.subs.bars[req.req_id] = _stream(req, inst, now, bars)


def _stream(req: HistoricalRequest, inst: Instrument, now: datetime, bars: list[Bar]) -> BarStream:
    due = now.timestamp() + UPDATE_SECONDS
    last = bars[-1] if bars else None
    return BarStream(inst, req.bar_size, req.what_to_show, req.use_rth, req.format_date, due, last)


def _paced(s: Session, req: HistoricalRequest, inst: Instrument, now: datetime) -> bool:
    identity = (inst.con_id, req.end, req.duration, req.bar_size, req.what_to_show, req.use_rth)
    family = (inst.con_id, req.contract.exchange, req.what_to_show)
    violation = s.sim.historical_pacing.check(now, identity, family)
    if violation:
        s.error(req.req_id, 162, violation)
    return violation is None


def _bars(
    s: Session, req_id: int, inst: Instrument, req: HistoricalRequest | BarStream,
    end: datetime, duration: str,
) -> list[Bar] | None:  # fmt: skip
    try:
        return s.sim.market.bars(
            inst,
            end=end,
            duration=duration,
            bar_size=req.bar_size,
            what_to_show=req.what_to_show,
            use_rth=req.use_rth,
            format_date=req.format_date,
        )
    except ValueError as exc:
        s.error(req_id, 162, f"{HMDS}{exc}")
        return None


def cancel_historical_data(s: Session, fields: list[str]) -> None:
    """``25, 1, reqId``: ends a keepUpToDate stream (nothing else is ever left running)."""
    s.subs.bars.pop(FieldReader(fields, 2).int(), None)


def update_bars(s: Session) -> None:
    """Send the forming bar of every keepUpToDate request that is due (the sim's timer)."""
    now = s.sim.clock.now()
    for req_id, stream in list(s.subs.bars.items()):
        if now.timestamp() >= stream.next_update:
            stream.next_update = now.timestamp() + UPDATE_SECONDS
            _update(s, req_id, stream, now)


def _update(s: Session, req_id: int, stream: BarStream, now: datetime) -> None:
    daily = " ".join(stream.bar_size.lower().split()) in DAILY
    duration = "1 D" if daily else _span(stream.bar_size)
    bars = _bars(s, req_id, stream.instrument, stream, now.astimezone(UTC), duration)
    if not bars or bars[-1] == stream.last:
        return  # closed market, or nothing moved
    stream.last = bars[-1]
    s.send(msg.historical_data_update(req_id, bars[-1]))


def _span(bar_size: str) -> str:
    """A duration that holds the forming bar of an intraday bar size."""
    number, unit = bar_size.split()[:2]
    seconds = int(number) * {"sec": 1, "min": 60, "hou": 3600}[unit[:3].lower()]
    return f"{seconds} S"


HANDLERS = {
    In.REQ_HISTORICAL_DATA: req_historical_data,
    In.CANCEL_HISTORICAL_DATA: cancel_historical_data,
}
