"""Field-by-field codecs for the TWS API messages ibsim speaks.

Outbound encoders (``session``, ``account``, ``orders``, ``market``) turn model objects into the
list of string fields of one message, already laid out for the negotiated server version;
``requests`` decodes inbound requests into model objects. Nothing here touches a socket.
"""

from __future__ import annotations

from enum import IntEnum

from ibsim.model import Instrument
from ibsim.wire import fmt_multiplier


class In(IntEnum):
    """Client -> server message ids."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_COMPLETED_ORDERS = 99


class Out(IntEnum):
    """Server -> client message ids."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    TICK_GENERIC = 45
    TICK_STRING = 46
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    COMPLETED_ORDER = 101
    COMPLETED_ORDERS_END = 102


def contract_fields(inst: Instrument, exchange: str, *, right: str = "") -> list[str]:
    """The 11 contract fields most messages carry, conId through tradingClass.

    Args:
        inst: the catalog instrument.
        exchange: what goes in the exchange slot (routing exchange or execution venue).
        right: ``"?"`` in order messages, as the real gateway sends for non-options.
    """
    return [
        str(inst.con_id),
        inst.symbol,
        str(inst.sec_type),
        inst.last_trade_date,
        "0",
        right,
        fmt_multiplier(inst.multiplier),
        exchange,
        inst.currency,
        inst.local_symbol,
        inst.trading_class,
    ]


def listing_exchange(inst: Instrument) -> str:
    """Where positions and executions say a contract trades (ARCA, IDEALPRO, CME)."""
    return inst.primary_exchange or inst.exchange
