"""Pre-trade checks of a new order: contract, account, market hours, buying power, size.

Each check raises :class:`~ibsim.model.OrderRejected` with the code a real gateway uses (the
message texts follow IB's wording where it is known).
"""

from __future__ import annotations

import dataclasses

from ibsim.catalog import Catalog
from ibsim.ledger import Ledger
from ibsim.market import Market
from ibsim.model import Instrument, OrderRejected, OrderRequest, Quote, SecType, UnknownContract
from ibsim.orders import (
    CODE_ALLOCATION,
    CODE_NO_SECURITY,
    CODE_REJECTED,
    CODE_VALIDATION,
    estimate_price,
    normalise_type,
    sign,
)
from ibsim.scenario import Options

_EPSILON = 1e-9


def instrument(catalog: Catalog, req: OrderRequest) -> Instrument:
    """The one catalog instrument an order's contract names.

    Raises:
        OrderRejected: 321 without exchange, 200 unknown or ambiguous contract.
    """
    if not req.contract.exchange:
        raise OrderRejected(
            f"Error validating request.-'bN' : cause - Missing order exchange (order "
            f"{req.order_id})",
            CODE_VALIDATION,
        )
    try:
        found = catalog.resolve(req.contract)
    except UnknownContract as exc:
        raise OrderRejected(str(exc), CODE_NO_SECURITY) from exc
    if len(found) > 1:
        raise OrderRejected(
            f"The contract description specified for {req.contract.symbol} is ambiguous",
            CODE_NO_SECURITY,
        )
    return dataclasses.replace(found[0], trading_hours="", liquid_hours="")


def with_account(accounts: list[str], req: OrderRequest) -> OrderRequest:
    """The request with its account filled in (the only one) or checked.

    Raises:
        OrderRejected: 436 no account with several managed, 201 unknown account.
    """
    if not req.account:
        if len(accounts) > 1:
            raise OrderRejected(
                "You must specify an allocation (either a single account, group, or profile)",
                CODE_ALLOCATION,
            )
        return dataclasses.replace(req, account=accounts[0])
    if req.account not in accounts:
        raise OrderRejected(
            f"Order rejected - reason: The account code {req.account} is invalid",
            CODE_REJECTED,
        )
    return req


def check_market_hours(
    market: Market, options: Options, req: OrderRequest, inst: Instrument
) -> None:
    """Reject DAY market orders while the market is closed, if the scenario says so.

    Raises:
        OrderRejected: 201.
    """
    option = options.reject_day_mkt_when_closed
    is_day_mkt = normalise_type(req.order_type) == "MKT" and req.tif.upper() == "DAY"
    if option and is_day_mkt and not market.is_open(inst):
        raise OrderRejected(
            "Order rejected - reason: The market is closed; DAY market orders are not "
            "accepted outside regular trading hours",
            CODE_REJECTED,
        )


def check_not_expired(market: Market, inst: Instrument) -> None:
    """An option past its expiry (ibsim neither exercises nor assigns) takes no orders.

    Raises:
        OrderRejected: 201.
    """
    if inst.sec_type == SecType.OPTION and market.option_expired(inst):
        raise OrderRejected(
            f"Order rejected - reason: {inst.local_symbol} has expired", CODE_REJECTED
        )


def check_buying_power(ledger: Ledger, req: OrderRequest, inst: Instrument, quote: Quote) -> None:
    """Reject an order whose opening part needs more initial margin than AvailableFunds.

    Working orders are not counted (a documented simplification).

    Raises:
        OrderRejected: 201 (insufficient buying power).
    """
    signed = sign(req) * req.total_quantity
    opening = ledger.opening_quantity(req.account, inst, signed)
    if opening <= _EPSILON:
        return  # reducing a position frees margin
    price = estimate_price(req, quote)
    needed = ledger.initial_margin(req.account, inst, opening, price, short=signed < 0)
    valuation = ledger.valuation(req.account)
    if needed > valuation.available_funds:
        raise OrderRejected(
            "Order rejected - reason: YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE "
            f"DESIRED POSITION YOUR EQUITY WITH LOAN VALUE [{valuation.equity_with_loan:.2f}"
            f" {valuation.base}] MUST EXCEED THE INITIAL MARGIN [{needed:.2f} "
            f"{valuation.base}] (insufficient buying power)",
            CODE_REJECTED,
        )


def warning(market: Market, options: Options, req: OrderRequest, inst: Instrument) -> str:
    """IB's warning text for an order that is accepted with a caveat (error 399 territory).

    An IDEALPRO order below the minimum size still fills (as an odd lot); an order placed
    while its market is closed waits for the open.
    """
    if inst.sec_type == SecType.CASH and req.total_quantity < options.fx_odd_lot:
        return (
            f"Your order size is below the {inst.symbol} {options.fx_odd_lot:,.0f} "
            "IdealPro minimum and will be routed as an odd lot order."
        )
    if not market.is_open(inst, outside_rth=req.outside_rth):
        return "Order will not be placed at the exchange until the market opens."
    return ""
