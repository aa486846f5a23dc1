"""When an order may fill: time in force, goodAfterTime, goodTillDate and the opening auction.

- DAY: until the close of the trading day it becomes active in (for a stock with outsideRth,
  the end of extended hours); GTC: no end; IOC: at once or never.
- GTD: until ``goodTillDate``; OPG: only in the next regular session's opening auction (an
  unfilled opening order is cancelled there; stocks only, as at IB).
- ``goodAfterTime``: held (PreSubmitted) until then.

Times are parsed as IB parses them (see ibsim.ibtime).
"""

from __future__ import annotations

from datetime import datetime

from ibsim import ibtime
from ibsim.market import Market
from ibsim.model import Instrument, OrderRejected, OrderRequest, SecType
from ibsim.orders import CODE_REJECTED

REJECTED = "Order rejected - reason:"


def window(
    market: Market, req: OrderRequest, inst: Instrument, now: datetime
) -> tuple[float | None, float | None]:
    """(active_from, good_until) as Unix times; None = at once / no end.

    Raises:
        OrderRejected: 201 for a date IB cannot parse, GTD without a date or in the past,
            OPG for anything but a stock.
    """
    tif = req.tif.upper()
    start = _when(req.good_after_time, "goodAfterTime") if req.good_after_time else None
    active = max(now, start) if start else now
    if tif == "OPG":
        if inst.sec_type != SecType.STOCK:
            raise OrderRejected(f"{REJECTED} OPG is only valid for stocks", CODE_REJECTED)
        return market.next_open(inst, active).timestamp(), None
    return (start.timestamp() if start else None), _end(market, req, inst, active, now)


def _end(
    market: Market, req: OrderRequest, inst: Instrument, active: datetime, now: datetime
) -> float | None:
    tif = req.tif.upper()
    if tif == "DAY":
        return market.day_order_expiry(inst, active, outside_rth=req.outside_rth).timestamp()
    if tif != "GTD":
        return None
    if not req.good_till_date:
        raise OrderRejected(f"{REJECTED} a GTD order needs a goodTillDate", CODE_REJECTED)
    until = _when(req.good_till_date, "goodTillDate", end_of_day=True)
    if until <= now:
        raise OrderRejected(f"{REJECTED} goodTillDate {req.good_till_date} is past", CODE_REJECTED)
    return until.timestamp()


def _when(text: str, name: str, *, end_of_day: bool = False) -> datetime:
    try:
        return ibtime.parse(text, end_of_day=end_of_day)
    except ValueError as exc:
        raise OrderRejected(f"{REJECTED} invalid {name} {text!r}: {exc}", CODE_REJECTED) from exc
