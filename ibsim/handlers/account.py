"""Account requests: positions, account updates (single and multi), account summary.

All of them are subscriptions: after the initial download and its end marker, the simulator
calls :func:`push_update` whenever the broker reports that an account changed.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ibsim import pnl
from ibsim.messages import In
from ibsim.messages import account as msg
from ibsim.messages.requests import BadRequest, FieldReader
from ibsim.model import PortfolioItem

if TYPE_CHECKING:
    from ibsim.session import Session


def _accounts(s: Session, asked: str) -> list[str]:
    """The accounts a request names: one, or all of them for "" / "All"."""
    known = s.sim.broker.accounts
    if asked in ("", "All"):
        return list(known)
    if asked not in known:
        raise BadRequest(f"Invalid account code '{asked}'")
    return [asked]


# --- positions --------------------------------------------------------------------------------


def req_positions(s: Session, fields: list[str]) -> None:
    """``61, 1`` -> every position (``61``) then ``62`` positionEnd; stays subscribed."""
    s.subs.positions = True
    s.subs.sent_positions = {}
    _send_positions(s)
    s.send_end("positionEnd", msg.position_end())


def cancel_positions(s: Session, fields: list[str]) -> None:
    s.subs.positions = False


def _send_positions(s: Session) -> None:
    current = {(p.account, p.instrument.con_id): p for p in s.sim.broker.positions()}
    for key, old in s.subs.sent_positions.items():
        if key not in current:  # closed: IB reports it once more with quantity 0
            s.send(msg.position(dataclasses.replace(old, quantity=0.0)))
    for key, pos in current.items():
        if s.subs.sent_positions.get(key) != pos:
            s.send(msg.position(pos))
    s.subs.sent_positions = current


# --- reqAccountUpdates ------------------------------------------------------------------------


def req_account_updates(s: Session, fields: list[str]) -> None:
    """``6, 2, subscribe, account`` -> values, portfolio, time, then ``54`` downloadEnd."""
    r = FieldReader(fields, 2)
    subscribe, asked = r.bool(), r.str()
    if not subscribe:
        s.subs.account = None
        return
    account = _accounts(s, asked)[0]
    s.subs.account = account
    s.subs.sent_portfolio = {}
    _send_account(s, account)
    s.send_end("accountDownloadEnd", msg.account_download_end(account))


def _send_account(s: Session, account: str) -> None:
    broker = s.sim.broker
    for value in broker.account_values(account):
        s.send(msg.account_value(value))
    current = {item.instrument.con_id: item for item in broker.portfolio(account)}
    for con_id, old in s.subs.sent_portfolio.items():
        if con_id not in current:
            s.send(msg.portfolio_value(_closed(old)))
    for item in current.values():
        s.send(msg.portfolio_value(item))
    s.subs.sent_portfolio = current
    s.send(msg.account_update_time(f"{s.sim.clock.now():%H:%M}"))


def _closed(item: PortfolioItem) -> PortfolioItem:
    return dataclasses.replace(item, position=0.0, market_value=0.0, unrealized_pnl=0.0)


# --- reqAccountUpdatesMulti -------------------------------------------------------------------


def req_account_updates_multi(s: Session, fields: list[str]) -> None:
    """``76, 1, reqId, account, modelCode, ledgerAndNLV`` -> ``73`` rows then ``74``."""
    r = FieldReader(fields, 2)
    req_id, asked, model = r.int(), r.str(), r.str()
    s.subs.multi[req_id] = (asked, model)
    for account in _accounts(s, asked):
        _send_multi(s, req_id, account, model)
    s.send_end("accountUpdateMultiEnd", msg.account_update_multi_end(req_id))


def _send_multi(s: Session, req_id: int, account: str, model: str) -> None:
    for value in s.sim.broker.account_values(account):
        s.send(msg.account_update_multi(req_id, model, value))


def cancel_account_updates_multi(s: Session, fields: list[str]) -> None:
    s.subs.multi.pop(FieldReader(fields, 2).int(), None)


# --- reqAccountSummary ------------------------------------------------------------------------


def req_account_summary(s: Session, fields: list[str]) -> None:
    """``62, 1, reqId, group, tags`` -> ``63`` rows for every account, then ``64``."""
    r = FieldReader(fields, 2)
    req_id, _group, tags = r.int(), r.str(), r.str()
    tag_list = [t.strip() for t in tags.split(",") if t.strip()]
    s.subs.summary[req_id] = tag_list
    for account in s.sim.broker.accounts:
        _send_summary(s, req_id, account, tag_list)
    s.send_end("accountSummaryEnd", msg.account_summary_end(req_id))


def _send_summary(s: Session, req_id: int, account: str, tags: list[str]) -> None:
    for value in s.sim.broker.account_summary(account, tags):
        s.send(msg.account_summary(req_id, value))


def cancel_account_summary(s: Session, fields: list[str]) -> None:
    s.subs.summary.pop(FieldReader(fields, 2).int(), None)


# --- reqPositionsMulti -----------------------------------------------------------------------


def req_positions_multi(s: Session, fields: list[str]) -> None:
    """``74, 1, reqId, account, modelCode`` -> ``71`` per position then ``72``.

    Only the initial download: later changes are not pushed (see docs/ibsim-fidelity.md).
    Positions belong to no model, so a model code other than "" finds none.
    """
    r = FieldReader(fields, 2)
    req_id, asked, model = r.int(), r.str(), r.str()
    accounts = _accounts(s, asked)
    for pos in s.sim.broker.positions():
        if pos.account in accounts and not model:
            s.send(msg.position_multi(req_id, pos, model))
    s.send(msg.position_multi_end(req_id))


# --- reqPnL / reqPnLSingle --------------------------------------------------------------------


def req_pnl(s: Session, fields: list[str]) -> None:
    """``92, reqId, account, modelCode`` -> ``94`` now and whenever the figures change."""
    r = FieldReader(fields, 1)
    req_id, account = r.int(), _accounts(s, r.str())[0]
    s.subs.pnl[req_id] = (account, 0)
    push_pnl(s)


def req_pnl_single(s: Session, fields: list[str]) -> None:
    """``94, reqId, account, modelCode, conId`` -> ``95`` now and on every change."""
    r = FieldReader(fields, 1)
    req_id, account = r.int(), _accounts(s, r.str())[0]
    r.skip(1)  # modelCode
    s.subs.pnl[req_id] = (account, r.int())
    push_pnl(s)


def cancel_pnl(s: Session, fields: list[str]) -> None:
    req_id = FieldReader(fields, 1).int()
    s.subs.pnl.pop(req_id, None)
    s.subs.sent_pnl.pop(req_id, None)


def push_pnl(s: Session) -> None:
    """Send the P&L subscriptions whose figures changed since last sent (IB: once a second)."""
    for req_id, (account, con_id) in list(s.subs.pnl.items()):
        figures, message = _pnl_now(s, req_id, account, con_id)
        if s.subs.sent_pnl.get(req_id) != figures:
            s.subs.sent_pnl[req_id] = figures
            s.send(message)


def _pnl_now(s: Session, req_id: int, account: str, con_id: int) -> tuple[object, list[str]]:
    ledger = s.sim.broker.ledger
    if con_id:
        single = pnl.position_pnl(ledger, account, con_id)
        return single, msg.pnl_single(req_id, single)
    whole = pnl.account_pnl(ledger, account)
    return whole, msg.pnl(req_id, whole)


# --- updates ----------------------------------------------------------------------------------


def push_update(s: Session, account: str) -> None:
    """Send fresh figures for ``account`` on every subscription that covers it."""
    if s.subs.account == account:
        _send_account(s, account)
    for req_id, (asked, model) in list(s.subs.multi.items()):
        if asked in ("", "All", account):
            _send_multi(s, req_id, account, model)
    for req_id, tags in list(s.subs.summary.items()):
        _send_summary(s, req_id, account, tags)
    if s.subs.positions:
        _send_positions(s)
    push_pnl(s)


HANDLERS = {
    In.REQ_POSITIONS: req_positions,
    In.CANCEL_POSITIONS: cancel_positions,
    In.REQ_ACCT_DATA: req_account_updates,
    In.REQ_ACCOUNT_UPDATES_MULTI: req_account_updates_multi,
    In.CANCEL_ACCOUNT_UPDATES_MULTI: cancel_account_updates_multi,
    In.REQ_ACCOUNT_SUMMARY: req_account_summary,
    In.CANCEL_ACCOUNT_SUMMARY: cancel_account_summary,
    In.REQ_POSITIONS_MULTI: req_positions_multi,
    In.CANCEL_POSITIONS_MULTI: lambda s, fields: None,  # nothing streams after the download
    In.REQ_PNL: req_pnl,
    In.CANCEL_PNL: cancel_pnl,
    In.REQ_PNL_SINGLE: req_pnl_single,
    In.CANCEL_PNL_SINGLE: cancel_pnl,
}
