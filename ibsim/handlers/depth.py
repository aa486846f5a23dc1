"""reqMktDepth: a small order book around the quote, sampled like top of book.

The first sample inserts every row (operation 0, best first, as the libraries expect), later
samples update the rows that changed (operation 1). Exchange depth answers updateMktDepth
(12), smart depth updateMktDepthL2 (13) with market maker "SMART". An index has no book
(10092, as IB answers for contracts without deep data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ibsim.handlers.market import resolve_one
from ibsim.handlers.mktdata import SAMPLE_SECONDS
from ibsim.handlers.state import DepthBook
from ibsim.messages import In
from ibsim.messages import market as msg
from ibsim.messages.requests import FieldReader, read_contract
from ibsim.model import SecType

if TYPE_CHECKING:
    from ibsim.session import Session

MAX_ROWS = 10
NO_DEPTH = "Deep market data is not supported for this combination of security/exchange"


def req_mkt_depth(s: Session, fields: list[str]) -> None:
    """``10, 5, reqId, contract(12), numRows, isSmartDepth, options`` -> the book's rows."""
    r = FieldReader(fields, 2)
    req_id = r.int()
    inst = resolve_one(s, req_id, read_contract(r))
    if inst is None:
        return
    if inst.sec_type == SecType.INDEX:
        s.error(req_id, 10092, NO_DEPTH)
        return
    rows, smart = max(1, min(r.int(5), MAX_ROWS)), r.bool()
    book = DepthBook(inst, rows, smart)
    s.subs.depth[req_id] = book
    sample(s, req_id, book)


def cancel_mkt_depth(s: Session, fields: list[str]) -> None:
    s.subs.depth.pop(FieldReader(fields, 2).int(), None)


def sample_due(s: Session, now: float) -> None:
    """Sample every book whose interval has passed (the simulator's timer)."""
    for req_id, book in list(s.subs.depth.items()):
        if now >= book.due:
            book.due = now + SAMPLE_SECONDS
            sample(s, req_id, book)


def sample(s: Session, req_id: int, book: DepthBook) -> None:
    """Insert every row the first time, then update the rows that changed."""
    market = s.sim.market
    if book.sent and not market.is_open(book.instrument, outside_rth=True):
        return  # nothing trades: the book stands
    for level in market.depth(book.instrument, book.rows):
        key = (level.side, level.position)
        old = book.sent.get(key)
        if old == level:
            continue
        book.sent[key] = level
        s.send(msg.market_depth(req_id, level, 0 if old is None else 1, book.smart))


HANDLERS = {
    In.REQ_MKT_DEPTH: req_mkt_depth,
    In.CANCEL_MKT_DEPTH: cancel_mkt_depth,
}
