"""Contract details and the contract resolution and date parsing other handlers share."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ibsim import ibtime
from ibsim.messages import In
from ibsim.messages import market as msg
from ibsim.messages.requests import (
    BadRequest,
    read_contract_details,
)
from ibsim.model import ContractQuery, Instrument, UnknownContract

if TYPE_CHECKING:
    from ibsim.session import Session

NO_DEFINITION = "No security definition has been found for the request"
HMDS = "Historical Market Data Service error message:"


def resolve_one(s: Session, req_id: int, query: ContractQuery) -> Instrument | None:
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


def parse_end(text: str, now: datetime) -> datetime:
    """IB's endDateTime (see ibsim.ibtime); empty means now, a bare date its last second.

    Raises:
        BadRequest: 162, as the historical data service answers a bad end.
    """
    if not text.strip():
        return now
    try:
        return ibtime.parse(text, end_of_day=True)
    except ValueError as exc:
        raise BadRequest(f"{HMDS}{exc}", 162) from exc


HANDLERS = {
    In.REQ_CONTRACT_DATA: req_contract_details,
}
