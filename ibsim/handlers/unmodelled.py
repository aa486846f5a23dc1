"""Requests ibsim does not model, answered the way a gateway answers "nothing".

No request may leave a client waiting: a list request gets its empty list with its end marker
(what a gateway sends when it has nothing), a request for data ibsim cannot produce gets an
error tied to the request's id. Never code 321 or 2100-2199 there: ib_async treats those as
warnings and keeps waiting. Cancels of what never streams are accepted silently, as IB does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ibsim.messages import In, Out
from ibsim.messages.requests import FieldReader, read_contract

if TYPE_CHECKING:
    from ibsim.session import Session

NOT_MODELLED = "(not modelled by ibsim)"
NO_DEFINITION = "No security definition has been found for the request"
SCANNER_XML = '<?xml version="1.0" encoding="UTF-8"?>\n<ScanParameterResponse/>'
FA_REFUSED = "FA data operations ignored for non FA customers."

# Request -> the empty answer a gateway gives, built from the request id (as text).
EMPTY: dict[int, Callable[[str], list[str]]] = {
    In.REQ_SCANNER_PARAMETERS: lambda _: [str(Out.SCANNER_PARAMETERS), "1", SCANNER_XML],
    In.REQ_SCANNER_SUBSCRIPTION: lambda rid: [str(Out.SCANNER_DATA), "3", rid, "0"],
    In.REQ_SOFT_DOLLAR_TIERS: lambda rid: [str(Out.SOFT_DOLLAR_TIERS), rid, "0"],
    In.REQ_MKT_DEPTH_EXCHANGES: lambda _: [str(Out.MKT_DEPTH_EXCHANGES), "0"],
    In.REQ_SMART_COMPONENTS: lambda rid: [str(Out.SMART_COMPONENTS), rid, "0"],
    In.REQ_NEWS_PROVIDERS: lambda _: [str(Out.NEWS_PROVIDERS), "0"],
    In.REQ_HISTORICAL_NEWS: lambda rid: [str(Out.HISTORICAL_NEWS_END), rid, "0"],
    In.REQ_HISTOGRAM_DATA: lambda rid: [str(Out.HISTOGRAM_DATA), rid, "0"],
    In.REQ_USER_INFO: lambda rid: [str(Out.USER_INFO), rid, ""],
    In.QUERY_DISPLAY_GROUPS: lambda rid: [str(Out.DISPLAY_GROUP_LIST), "1", rid, ""],
}

# Request -> the error (code, text) tied to its id.
ERRORS: dict[int, tuple[int, str]] = {
    In.EXERCISE_OPTIONS: (200, NO_DEFINITION),
    In.REQ_FUNDAMENTAL_DATA: (430, "We are sorry, but fundamentals data for the security "
                                   f"specified is not available. {NOT_MODELLED}"),
    In.REQ_NEWS_ARTICLE: (10172, f"Failed to request news article: No data available "
                                 f"{NOT_MODELLED}"),
    In.REQ_WSH_META_DATA: (10279, f"Failed request WSH metadata {NOT_MODELLED}"),
    In.REQ_WSH_EVENT_DATA: (10283, f"Failed request WSH event data {NOT_MODELLED}"),
    In.REQ_REAL_TIME_BARS: (354, f"Requested market data is not subscribed. {NOT_MODELLED}"),
    In.REQ_TICK_BY_TICK_DATA: (354, f"Requested market data is not subscribed. {NOT_MODELLED}"),
}  # fmt: skip

# Requests that need no answer (cancels of what never streams, log levels, display groups).
SILENT = frozenset({
    In.REQ_NEWS_BULLETINS, In.CANCEL_NEWS_BULLETINS,
    In.SET_SERVER_LOGLEVEL, In.CANCEL_SCANNER_SUBSCRIPTION, In.CANCEL_REAL_TIME_BARS,
    In.CANCEL_FUNDAMENTAL_DATA, In.CANCEL_CALC_IMPLIED_VOLAT, In.CANCEL_CALC_OPTION_PRICE,
    In.SUBSCRIBE_TO_GROUP_EVENTS, In.UPDATE_DISPLAY_GROUP, In.UNSUBSCRIBE_FROM_GROUP_EVENTS,
    In.CANCEL_HISTOGRAM_DATA, In.CANCEL_HEAD_TIMESTAMP, In.CANCEL_TICK_BY_TICK_DATA,
    In.CANCEL_WSH_META_DATA, In.CANCEL_WSH_EVENT_DATA,
})  # fmt: skip

# reqHistoricalTicks' whatToShow -> the message its (empty, done) answer comes in.
TICKS_REPLY = {
    "TRADES": Out.HISTORICAL_TICKS_LAST,
    "BID_ASK": Out.HISTORICAL_TICKS_BID_ASK,
    "MIDPOINT": Out.HISTORICAL_TICKS,
}


def _empty(
    build: Callable[[str], list[str]], at: int | None
) -> Callable[[Session, list[str]], None]:
    def handler(s: Session, fields: list[str]) -> None:
        s.send(build("" if at is None else FieldReader(fields, at).str()))

    return handler


def _error(code: int, text: str, at: int) -> Callable[[Session, list[str]], None]:
    def handler(s: Session, fields: list[str]) -> None:
        s.error(FieldReader(fields, at).int(-1), code, text)

    return handler


def _silent(s: Session, fields: list[str]) -> None:
    """Nothing to answer."""


def req_historical_ticks(s: Session, fields: list[str]) -> None:
    """``96, reqId, contract, includeExpired, start, end, n, whatToShow, ...`` -> no ticks,
    done=1, in the message whatToShow selects (96 midpoint, 97 bid/ask, 98 trades)."""
    r = FieldReader(fields, 1)
    req_id = r.str()
    read_contract(r)
    r.skip(4)  # includeExpired, start, end, numberOfTicks
    reply = TICKS_REPLY.get(r.str().upper(), Out.HISTORICAL_TICKS)
    s.send([str(reply), req_id, "0", "1"])


def req_family_codes(s: Session, fields: list[str]) -> None:
    """``80`` -> ``78, n, (account, familyCode)*``: accounts without a family code."""
    accounts = s.sim.broker.accounts
    s.send([str(Out.FAMILY_CODES), str(len(accounts)), *[f for a in accounts for f in (a, "")]])


def refuse_fa(s: Session, fields: list[str]) -> None:
    """requestFA / replaceFA on a non-FA login (the libraries time these out themselves)."""
    s.error(-1, 321, f"Error validating request.-'bA' : cause - {FA_REFUSED}")


def handlers(req_id_at: dict[int, int]) -> dict[int, Callable[[Session, list[str]], None]]:
    """Every handler of this module, the request id read where ``req_id_at`` says."""
    table: dict[int, Callable[[Session, list[str]], None]] = dict.fromkeys(SILENT, _silent)
    for msg_id, build in EMPTY.items():
        table[msg_id] = _empty(build, req_id_at.get(msg_id))
    for msg_id, (code, text) in ERRORS.items():
        table[msg_id] = _error(code, text, req_id_at[msg_id])
    table[In.REQ_HISTORICAL_TICKS] = req_historical_ticks
    table[In.REQ_FAMILY_CODES] = req_family_codes
    table[In.REQ_FA] = refuse_fa
    table[In.REPLACE_FA] = refuse_fa
    return table
