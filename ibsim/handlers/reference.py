"""Reference data: market rules, symbol search, head timestamps, option-chain parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ibsim.handlers.market import resolve_one
from ibsim.messages import In
from ibsim.messages import reference as msg
from ibsim.messages.requests import FieldReader, read_contract
from ibsim.model import Instrument, SecType

if TYPE_CHECKING:
    from ibsim.session import Session

MAX_SYMBOL_SAMPLES = 16  # IB answers reqMatchingSymbols with at most 16 descriptions
FIRST_DATA = datetime(2005, 1, 3, 14, 30, tzinfo=UTC)  # ibsim's head timestamp (not futures)
FUTURE_HISTORY = timedelta(days=365)  # a future's data starts a year before its expiry


def req_market_rule(s: Session, fields: list[str]) -> None:
    """``91, marketRuleId`` -> ``93`` with the rule's price increments (none if unknown)."""
    rule_id = FieldReader(fields, 1).int()
    ticks = sorted(
        {
            inst.min_tick
            for inst in s.sim.market.catalog.all()
            if str(rule_id) in inst.market_rule_ids.split(",")
        }
    )
    s.send(msg.market_rule(rule_id, [(0.0, tick) for tick in ticks[:1]]))


def req_matching_symbols(s: Session, fields: list[str]) -> None:
    """``81, reqId, pattern`` -> ``79`` with instruments whose symbol or name starts with it."""
    r = FieldReader(fields, 1)
    req_id, pattern = r.int(), r.str().strip().upper()
    found: dict[tuple[str, str, str], Instrument] = {}
    for inst in s.sim.market.catalog.listed():
        key = (inst.symbol, str(inst.sec_type), inst.currency)
        if pattern and _matches(inst, pattern) and key not in found:
            found[key] = inst
    s.send(msg.symbol_samples(req_id, list(found.values())[:MAX_SYMBOL_SAMPLES], s.version))


def _matches(inst: Instrument, pattern: str) -> bool:
    words = [inst.symbol, inst.local_symbol, *inst.long_name.split()]
    return any(word.upper().startswith(pattern) for word in words)


def req_head_timestamp(s: Session, fields: list[str]) -> None:
    """``87, reqId, contract, includeExpired, useRTH, whatToShow, formatDate`` -> ``88``."""
    r = FieldReader(fields, 1)
    req_id = r.int()
    inst = resolve_one(s, req_id, read_contract(r))
    if inst is None:
        return
    r.skip(3)  # includeExpired, useRTH, whatToShow
    head = head_timestamp(inst)
    stamp = str(int(head.timestamp())) if r.int(1) == 2 else f"{head:%Y%m%d-%H:%M:%S}"
    s.send(msg.head_timestamp(req_id, stamp))


def head_timestamp(inst: Instrument) -> datetime:
    """The earliest time ibsim serves bars for (its price path has no beginning)."""
    if inst.sec_type == SecType.FUTURE:
        expiry = datetime.strptime(inst.last_trade_date, "%Y%m%d").replace(tzinfo=UTC)
        return expiry - FUTURE_HISTORY
    return FIRST_DATA


def req_sec_def_opt_params(s: Session, fields: list[str]) -> None:
    """``78, reqId, symbol, futFopExchange, secType, conId`` -> no chains, then ``76``."""
    s.send(msg.sec_def_opt_params_end(FieldReader(fields, 1).int()))


HANDLERS = {
    In.REQ_MARKET_RULE: req_market_rule,
    In.REQ_MATCHING_SYMBOLS: req_matching_symbols,
    In.REQ_HEAD_TIMESTAMP: req_head_timestamp,
    In.REQ_SEC_DEF_OPT_PARAMS: req_sec_def_opt_params,
}
