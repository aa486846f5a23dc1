"""Reference-data messages: market rules, symbol samples, head timestamps, option parameters."""

from __future__ import annotations

from ibsim.messages import Out
from ibsim.model import Instrument
from ibsim.wire import fmt_float, fmt_multiplier


def market_rule(rule_id: int, increments: list[tuple[float, float]]) -> list[str]:
    """``93, marketRuleId, n, (lowEdge, increment)*n`` (no version field)."""
    fields = [str(Out.MARKET_RULE), str(rule_id), str(len(increments))]
    for low_edge, increment in increments:
        fields += [fmt_float(low_edge), repr(increment)]
    return fields


def symbol_samples(req_id: int, found: list[Instrument], version: int) -> list[str]:
    """``79, reqId, n, (conId, symbol, secType, primaryExchange, currency, nDerivative,
    derivativeSecTypes*, [description, issuerId from v176])*n``."""
    fields = [str(Out.SYMBOL_SAMPLES), str(req_id), str(len(found))]
    for inst in found:
        fields += [
            str(inst.con_id),
            inst.symbol,
            str(inst.sec_type),
            inst.primary_exchange or inst.exchange,
            inst.currency,
            "0",  # derivative security types
        ]
        if version >= 176:
            fields += ["", ""]  # description, issuerId (bonds only)
    return fields


def head_timestamp(req_id: int, stamp: str) -> list[str]:
    """``88, reqId, headTimestamp``."""
    return [str(Out.HEAD_TIMESTAMP), str(req_id), stamp]


def sec_def_opt_params(
    req_id: int, exchange: str, under_con_id: int, trading_class: str, multiplier: float,
    expirations: list[str], strikes: list[float],
) -> list[str]:  # fmt: skip
    """``75, reqId, exchange, underlyingConId, tradingClass, multiplier, nExp, exp*, nStrikes,
    strike*`` (no version field)."""
    return [
        str(Out.SECURITY_DEFINITION_OPTION_PARAMETER),
        str(req_id),
        exchange,
        str(under_con_id),
        trading_class,
        fmt_multiplier(multiplier),
        str(len(expirations)),
        *expirations,
        str(len(strikes)),
        *(fmt_float(k) for k in strikes),
    ]


def sec_def_opt_params_end(req_id: int) -> list[str]:
    return [str(Out.SECURITY_DEFINITION_OPTION_PARAMETER_END), str(req_id)]
