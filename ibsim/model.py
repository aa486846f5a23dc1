"""The plain data that ibsim's trading model and its wire layer exchange.

The model (``market.py``, ``broker.py``) knows nothing of sockets or field layouts; the wire
layer (``codec.py``, ``server.py``) knows nothing of prices or ledgers. These types are the
whole contract between the two. Floats that IB leaves unset travel as ``None`` here and are
encoded by the wire layer (as ``2147483647`` / ``1.7976931348623157E308`` or an empty field).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SecType(StrEnum):
    STOCK = "STK"
    CASH = "CASH"
    FUTURE = "FUT"
    INDEX = "IND"
    OPTION = "OPT"


@dataclass(frozen=True)
class Instrument:
    """One tradable (or, for an index, quotable) contract of the built-in catalog."""

    con_id: int
    symbol: str
    sec_type: SecType
    exchange: str  # routing exchange, e.g. SMART, IDEALPRO, CME
    primary_exchange: str  # e.g. ARCA, NASDAQ; empty for FX and futures
    currency: str
    local_symbol: str
    trading_class: str
    long_name: str
    min_tick: float
    multiplier: float = 1.0  # sent as "" for stocks and FX, "5" for MES, "50" for ES
    last_trade_date: str = ""  # YYYYMMDD for futures
    time_zone: str = "US/Eastern"
    trading_hours: str = ""  # IB format: "20261124:0930-20261124:1600;20261125:CLOSED"
    liquid_hours: str = ""
    order_types: str = "ACTVTIM,ADJUST,ALERT,ALGO,ALLOC,LMT,MKT,STP,STPLMT,TRAIL"
    valid_exchanges: str = "SMART"
    market_rule_ids: str = "26"
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    stock_type: str = ""  # COMMON, ETF, ...
    min_size: float = 1.0
    size_increment: float = 1.0
    isin: str = ""  # secIdList carries it (stocks)
    margin_units: float = 1.0  # futures: initial margin in MES contracts (see ibsim.ledger)
    strike: float = 0.0  # options
    right: str = ""  # options: C or P
    underlying_con_id: int = 0  # options: the stock they are written on


@dataclass(frozen=True)
class ContractQuery:
    """The contract fields a client sends (reqContractDetails, reqMktData, placeOrder, ...).

    Empty strings and zero mean "not given", as on the wire.
    """

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    sec_id_type: str = ""  # e.g. ISIN (reqContractDetails)
    sec_id: str = ""

    @property
    def names_something(self) -> bool:
        """Whether it names a contract at all: conId, symbol, local symbol or security id.

        A gateway does not answer a query without one with its whole catalog.
        """
        return bool(self.con_id or self.symbol or self.local_symbol or self.sec_id)


@dataclass(frozen=True)
class Quote:
    """Top of book for one instrument at one clock instant."""

    bid: float
    ask: float
    last: float
    close: float  # previous session close
    bid_size: float
    ask_size: float
    last_size: float
    volume: float


@dataclass(frozen=True)
class DepthLevel:
    """One row of an order book: side 0 ask, 1 bid (IB's numbering); position 0 is the best."""

    side: int
    position: int
    price: float
    size: float


@dataclass(frozen=True)
class Bar:
    """One historical bar; ``date`` is already formatted the way the request asked."""

    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


class OrderStatus(StrEnum):
    API_PENDING = "ApiPending"  # placed with transmit=False: at the gateway, never reported
    PENDING_SUBMIT = "PendingSubmit"
    PRE_SUBMITTED = "PreSubmitted"
    SUBMITTED = "Submitted"
    FILLED = "Filled"
    PENDING_CANCEL = "PendingCancel"
    CANCELLED = "Cancelled"
    INACTIVE = "Inactive"


TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.INACTIVE})


@dataclass(frozen=True)
class OrderRequest:
    """What one placeOrder message asked for (a re-sent order id is a modify)."""

    client_id: int
    order_id: int
    contract: ContractQuery
    action: str  # BUY / SELL
    total_quantity: float
    order_type: str  # MKT, LMT, STP, STP LMT
    lmt_price: float | None = None
    aux_price: float | None = None  # stop price
    tif: str = "DAY"  # DAY, GTC, IOC, GTD, OPG
    account: str = ""
    order_ref: str = ""
    outside_rth: bool = False
    transmit: bool = True
    parent_id: int = 0  # a bracket's parent (same client); 0 = none
    oca_group: str = ""
    oca_type: int = 0  # 1 cancel on fill, 2/3 reduce (see ibsim.links)
    good_after_time: str = ""  # as sent, e.g. "20261118 09:45:00 US/Eastern"
    good_till_date: str = ""  # with tif GTD
    algo_strategy: str = ""  # "Adaptive" accepted
    algo_params: tuple[tuple[str, str], ...] = ()


@dataclass
class Order:
    """The broker's live view of one order."""

    request: OrderRequest
    instrument: Instrument
    perm_id: int
    status: OrderStatus
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    why_held: str = ""
    warning_text: str = ""
    commission: float | None = None
    commission_currency: str = ""
    completed_time: str = ""  # "YYYYMMDD HH:MM:SS zone", set when terminal
    completed_status: str = ""  # text completedOrder carries, e.g. "Filled", "Cancelled by Trader"
    # Broker bookkeeping (the wire layer may ignore these).
    triggered: bool = False  # a STP / STP LMT order whose stop price has been touched
    good_until: float | None = None  # Unix time a DAY / GTD order expires; None = GTC / IOC
    active_from: float | None = None  # Unix time a goodAfterTime / OPG order may first fill
    exec_count: int = 0  # executions so far (numbers exec ids)
    placed_time: str = ""  # "YYYYMMDD HH:MM:SS zone" of the first placeOrder
    parent_perm_id: int | None = None  # a child's parent's permId (completedOrder shows it)

    @property
    def remaining(self) -> float:
        return self.request.total_quantity - self.filled

    @property
    def key(self) -> tuple[int, int]:
        return (self.request.client_id, self.request.order_id)


@dataclass(frozen=True)
class Fill:
    """One execution and its commission report."""

    exec_id: str  # e.g. "0000e0d5.6571a5c3.01.01", unique
    order_key: tuple[int, int]  # (client_id, order_id)
    perm_id: int
    instrument: Instrument
    account: str
    side: str  # BOT / SLD
    shares: float
    price: float
    time: str  # "YYYYMMDD HH:MM:SS zone"
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float
    commission_currency: str
    realized_pnl: float | None  # None when the fill opened or added to a position
    liquidity: int = 2  # 1 added, 2 removed
    epoch: float = 0.0  # Unix time of the execution (for reqExecutions time filters)


@dataclass(frozen=True)
class ExecutionFilter:
    """reqExecutions filter; empty / zero fields match everything."""

    client_id: int = 0
    account: str = ""
    time: str = ""  # "YYYYMMDD HH:MM:SS", fills at or after
    symbol: str = ""
    sec_type: str = ""
    exchange: str = ""
    side: str = ""


@dataclass(frozen=True)
class Position:
    account: str
    instrument: Instrument
    quantity: float
    avg_cost: float  # per unit times multiplier, as IB reports it


@dataclass(frozen=True)
class PortfolioItem:
    account: str
    instrument: Instrument
    position: float
    market_price: float
    market_value: float
    average_cost: float
    unrealized_pnl: float
    realized_pnl: float


@dataclass(frozen=True)
class AccountValue:
    """One row of reqAccountUpdates / reqAccountUpdatesMulti / reqAccountSummary."""

    key: str
    value: str
    currency: str  # "", "BASE" or an ISO code
    account: str


class OrderRejected(Exception):  # named after IB's wording (error 201)
    """The broker refused an order; ``code`` is the IB error code (201, 321, 103, ...)."""

    def __init__(self, reason: str, code: int = 201) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class NotCancellable(Exception):  # IB error 10148
    """cancelOrder on an order that is already terminal or unknown."""


class UnknownContract(LookupError):
    """No catalog entry matches a ContractQuery (IB error 200)."""


@dataclass
class BrokerEvents:
    """Sinks the wire layer gives the broker, called synchronously as things happen.

    ``order_status`` fires on every status or fill change; ``fill`` once per execution (the
    wire layer sends execDetails with reqId -1 then commissionReport); ``account_changed``
    when cash, positions or P&L of an account moved (subscribed clients get fresh values).
    """

    order_status: list = field(default_factory=list)  # callables (Order) -> None
    fill: list = field(default_factory=list)  # callables (Order, Fill) -> None
    account_changed: list = field(default_factory=list)  # callables (account: str) -> None
