"""Reference data: market rules, symbol search, head timestamps, option-chain parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ibsim import chain, hours, options
from ibsim.handlers.market import NO_DEFINITION, resolve_one
from ibsim.messages import In
from ibsim.messages import market as market_msg
from ibsim.messages import reference as msg
from ibsim.messages.requests import FieldReader, read_contract
from ibsim.model import Instrument, SecType

if TYPE_CHECKING:
    from ibsim.session import Session

MAX_SYMBOL_SAMPLES = 16  # IB answers reqMatchingSymbols with at most 16 descriptions
FIRST_DATA = datetime(2005, 1, 3, 14, 30, tzinfo=UTC)  # ibsim's head timestamp (not futures)
FUTURE_HISTORY = timedelta(days=365)  # a future's data starts a year before its expiry
CUSTOM_COMPUTATION = 53  # the tick type IB answers calculateImpliedVolatility/OptionPrice with


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
    """``78, reqId, symbol, futFopExchange, secType, conId`` -> SPY's chain (the only one
    ibsim lists) on SMART, then ``76``; any other underlying: the end marker alone."""
    r = FieldReader(fields, 1)
    req_id, symbol = r.int(), r.str().upper()
    r.skip(1)  # futFopExchange: for futures options, which ibsim does not list
    sec_type, con_id = r.str().upper(), r.int()
    spy = symbol == chain.UNDERLYING and con_id in (0, chain.UNDERLYING_CON_ID)
    if spy and sec_type in ("", "STK"):
        s.send(_spy_chain(s, req_id))
    s.send(msg.sec_def_opt_params_end(req_id))


def _spy_chain(s: Session, req_id: int) -> list[str]:
    today = hours.local_day("stk", s.sim.clock.now())
    expirations = [f"{d:%Y%m%d}" for d in chain.expiries(today)]
    return msg.sec_def_opt_params(
        req_id,
        "SMART",
        chain.UNDERLYING_CON_ID,
        chain.UNDERLYING,
        chain.MULTIPLIER,
        expirations,
        list(chain.STRIKES),
    )


def req_calc_implied_vol(s: Session, fields: list[str]) -> None:
    """``54, 3, reqId, contract, optionPrice, underPrice, ...`` -> one tickOptionComputation
    (type 53, custom) at the volatility that prices the option at optionPrice."""
    _calculate(s, fields, solve_vol=True)


def req_calc_option_price(s: Session, fields: list[str]) -> None:
    """``55, 3, reqId, contract, volatility, underPrice, ...`` -> one tickOptionComputation
    (type 53) with the model price and greeks at that volatility."""
    _calculate(s, fields, solve_vol=False)


def _calculate(s: Session, fields: list[str], *, solve_vol: bool) -> None:
    r = FieldReader(fields, 2)
    req_id = r.int()
    inst = resolve_one(s, req_id, read_contract(r))
    if inst is None:
        return
    if inst.sec_type != SecType.OPTION:
        s.error(req_id, 200, f"{NO_DEFINITION} (an option is needed)")
        return
    value, spot = r.float() or 0.0, r.float() or 0.0
    years = s.sim.market.years_to_expiry(inst)
    if solve_vol:
        value = options.implied_vol(inst.right, spot, inst.strike, years, value)
    if value <= 0 or spot <= 0:
        s.error(req_id, 200, f"{NO_DEFINITION} (no volatility prices it)")  # not 321: a hang
        return
    greeks = options.greeks(inst.right, spot, inst.strike, years, value)
    s.send(market_msg.option_computation(req_id, CUSTOM_COMPUTATION, greeks))


HANDLERS = {
    In.REQ_MARKET_RULE: req_market_rule,
    In.REQ_MATCHING_SYMBOLS: req_matching_symbols,
    In.REQ_HEAD_TIMESTAMP: req_head_timestamp,
    In.REQ_SEC_DEF_OPT_PARAMS: req_sec_def_opt_params,
    In.REQ_CALC_IMPLIED_VOLAT: req_calc_implied_vol,
    In.REQ_CALC_OPTION_PRICE: req_calc_option_price,
}
