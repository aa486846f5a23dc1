"""Order messages: openOrder, orderStatus, completedOrder, execDetails, commissionReport.

The openOrder layout mirrors a real paper gateway recorded at server version 176 (136 fields
for an order without algo parameters): note ``deltaNeutralOrderType`` is the string ``None``,
which makes both the Java and the Python decoders read the eight delta-neutral fields that
follow, and the unset sentinels are printed the way Java prints them. From version 177 on
``faProfile`` is gone (135 fields); at 178 execDetails gains ``pendingPriceRevision``.
"""

from __future__ import annotations

from ibsim.messages import Out, contract_fields, listing_exchange
from ibsim.model import Fill, Order
from ibsim.whatif import WhatIf
from ibsim.wire import (
    UNSET_DOUBLE,
    UNSET_INT,
    fmt_bool,
    fmt_decimal,
    fmt_float,
    fmt_int,
    fmt_optional_float,
)

NO_FA_PROFILE = 177  # first server version without order.faProfile


def _price(value: float | None) -> str:
    # The gateway echoes an unset limit/aux price as 0.0 in openOrder (see the recording).
    return fmt_float(value or 0.0)


def _algo(order: Order) -> list[str]:
    req = order.request
    if not req.algo_strategy:
        return [""]
    fields = [req.algo_strategy, str(len(req.algo_params))]
    for tag, value in req.algo_params:
        fields += [tag, value]
    return fields


def _order_head(order: Order, account: str) -> list[str]:
    """action .. orderRef: the part openOrder and completedOrder share."""
    req = order.request
    return [
        req.action,
        fmt_decimal(req.total_quantity),
        req.order_type,
        _price(req.lmt_price),
        _price(req.aux_price),
        req.tif,
        req.oca_group,
        account,
        "",  # openClose
        "0",  # origin: customer
        req.order_ref,
    ]


def _fa_fields(version: int) -> list[str]:
    fields = ["", "", ""]  # faGroup, faMethod, faPercentage
    if version < NO_FA_PROFILE:
        fields.append("")  # faProfile
    return fields


def open_order(
    order: Order, account: str, version: int, what_if: WhatIf | None = None
) -> list[str]:
    """``5, orderId, contract, order, orderState`` (no version field since v166); with
    ``what_if`` the answer to a what-if order (whatIf=1 and the margins filled in)."""
    req = order.request
    inst = order.instrument
    exchange = req.contract.exchange or inst.exchange
    return [
        str(Out.OPEN_ORDER),
        str(req.order_id),
        *contract_fields(inst, exchange, right="?"),
        *_order_head(order, account),
        str(req.client_id),
        str(order.perm_id),
        fmt_bool(req.outside_rth),
        "0",  # hidden
        "0",  # discretionaryAmt
        req.good_after_time,
        f"{order.perm_id}.0/{account}/{fmt_decimal(req.total_quantity)}",  # sharesAllocation
        *_fa_fields(version),
        *_open_order_middle(order),
        *_open_order_tail(order, what_if),
    ]


def _oca_type(order: Order) -> str:
    # The recorded gateway echoes ocaType 3 for an order sent with the library default 0.
    return str(order.request.oca_type or 3)


def _open_order_middle(order: Order) -> list[str]:
    """modelCode .. dncPresent: mostly what ibsim never sets, as the gateway prints it."""
    return [
        *["", order.request.good_till_date],  # modelCode, goodTillDate
        *["", "", ""],  # rule80A, percentOffset, settlingFirm
        *["0", "", "-1"],  # shortSaleSlot, designatedLocation, exemptCode
        "0",  # auctionStrategy
        *["", "", "", "", ""],  # startingPrice, stockRefPrice, delta, stockRangeLower/Upper
        UNSET_INT,  # displaySize
        *["0", "0", "0", ""],  # blockOrder, sweepToFill, allOrNone, minQty
        _oca_type(order),
        *["0", "0", ""],  # eTradeOnly, firmQuoteOnly, nbboPriceCap
        *[str(order.request.parent_id), "0"],  # parentId, triggerMethod
        *["", "0"],  # volatility, volatilityType
        *["None", ""],  # deltaNeutralOrderType, deltaNeutralAuxPrice
        *["0", "", "", "", "?", "0", "0", ""],  # the eight delta-neutral fields
        *["0", "0"],  # continuousUpdate, referencePriceType
        *["", "", "", "", ""],  # trailStopPrice, trailingPercent, basisPoints(+Type), legsDescrip
        *["0", "0", "0"],  # comboLegs, orderComboLegs, smartComboRoutingParams counts
        *[UNSET_INT, UNSET_INT, ""],  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncr
        "",  # hedgeType
        "0",  # optOutSmartRouting
        *["", "IB", "0"],  # clearingAccount, clearingIntent, notHeld
        "0",  # deltaNeutralContract present
    ]


def _order_state(order: Order, what_if: WhatIf | None) -> list[str]:
    """whatIf, status, the nine margin figures, commission, min/max, currency."""
    if what_if is None:
        return [
            "0",  # whatIf
            str(order.status),
            *[UNSET_DOUBLE] * 9,  # init/maint/equity-with-loan before, change, after
            fmt_optional_float(order.commission),
            *["", ""],  # minCommission, maxCommission
            order.commission_currency,
        ]
    margins = [what_if.before, what_if.change, what_if.after]
    estimate = fmt_float(what_if.commission)
    return [
        "1",
        str(order.status),
        *[_money(v) for m in margins for v in (m.initial, m.maintenance, m.equity_with_loan)],
        UNSET_DOUBLE,  # commission: IB leaves it unset and estimates min and max
        *[estimate, estimate],
        what_if.commission_currency,
    ]


def _money(value: float) -> str:
    return fmt_float(round(value, 2))


def _open_order_tail(order: Order, what_if: WhatIf | None) -> list[str]:
    """algo .. midOffsetAtHalf, including the order state."""
    return [
        *_algo(order),
        "0",  # solicited
        *_order_state(order, what_if),
        order.warning_text,
        "0",  # randomizeSize
        "0",  # randomizePrice
        "0",  # conditions count
        "None",  # adjustedOrderType
        *[UNSET_DOUBLE] * 6,  # triggerPrice .. adjustedTrailingAmount
        "0",  # adjustableTrailingUnit
        *["", "", ""],  # softDollarTier name, value, displayName
        "0",  # cashQty
        "1",  # dontUseAutoPriceForHedge
        *["0", "0", "0"],  # isOmsContainer, discretionaryUpToLimitPrice, usePriceMgmtAlgo
        *["", "", "0"],  # duration, postToAts, autoCancelParent
        *["", "", "", "", ""],  # minTradeQty .. midOffsetAtHalf (v170+)
    ]


def order_status(order: Order) -> list[str]:
    """``3, orderId, status, filled, remaining, avgFillPrice, permId, parentId, lastFillPrice,
    clientId, whyHeld, mktCapPrice`` (no version field since v131)."""
    req = order.request
    return [
        str(Out.ORDER_STATUS),
        str(req.order_id),
        str(order.status),
        fmt_decimal(order.filled),
        fmt_decimal(order.remaining),
        fmt_float(order.avg_fill_price),
        str(order.perm_id),
        str(req.parent_id),
        fmt_float(order.last_fill_price),
        str(req.client_id),
        order.why_held,
        fmt_float(0.0),
    ]


def open_order_end() -> list[str]:
    return [str(Out.OPEN_ORDER_END), "1"]


def completed_order(order: Order, account: str, version: int) -> list[str]:
    """``101, contract, order, status, completedTime, completedStatus`` (no order id)."""
    req = order.request
    inst = order.instrument
    return [
        str(Out.COMPLETED_ORDER),
        *contract_fields(inst, req.contract.exchange or inst.exchange, right="?"),
        *_order_head(order, account),
        str(order.perm_id),
        fmt_bool(req.outside_rth),
        *["0", "0", req.good_after_time],  # hidden, discretionaryAmt, goodAfterTime
        *_fa_fields(version),
        *["", req.good_till_date],  # modelCode, goodTillDate
        *["", "", ""],  # rule80A, percentOffset, settlingFirm
        *["0", "", "-1"],  # shortSaleSlot, designatedLocation, exemptCode
        *["", "", "", "", ""],  # startingPrice, stockRefPrice, delta, stockRangeLower/Upper
        *[UNSET_INT, "0", "0", ""],  # displaySize, sweepToFill, allOrNone, minQty
        *[_oca_type(order), "0"],  # ocaType, triggerMethod
        *["", "0", "None", ""],  # volatility, volatilityType, deltaNeutral type and aux price
        *["0", "0", "0", ""],  # deltaNeutral conId, shortSale, shortSaleSlot, location
        *["0", "0", "", "", ""],  # continuousUpdate, refPriceType, trail stop/pct, legsDescrip
        *["0", "0", "0"],  # legs counts
        *[UNSET_INT, UNSET_INT, ""],  # scale fields
        "",  # hedgeType
        *["", "IB", "0", "0"],  # clearingAccount, clearingIntent, notHeld, dnc present
        *_algo(order),
        "0",  # solicited
        str(order.status),
        *["0", "0", "0"],  # randomizeSize, randomizePrice, conditions count
        *[UNSET_DOUBLE, UNSET_DOUBLE, "0"],  # trailStopPrice, lmtPriceOffset, cashQty
        *["1", "0", ""],  # dontUseAutoPriceForHedge, isOmsContainer, autoCancelDate
        fmt_decimal(order.filled),
        *["0", "0", "", "0", "0"],  # refFuturesConId, autoCancelParent, shareholder, ...
        fmt_int(order.parent_perm_id),
        order.completed_time,
        order.completed_status or str(order.status),
        *["", "", "", "", ""],  # minTradeQty .. midOffsetAtHalf (v170+)
    ]


def completed_orders_end() -> list[str]:
    return [str(Out.COMPLETED_ORDERS_END)]


def exec_details(req_id: int, fill: Fill, version: int) -> list[str]:
    """``11, reqId, orderId, contract(11), execution`` (+pendingPriceRevision at v178)."""
    inst = fill.instrument
    venue = listing_exchange(inst)
    client_id, order_id = fill.order_key
    fields = [
        str(Out.EXECUTION_DATA),
        str(req_id),
        str(order_id),
        *contract_fields(inst, venue),
        fill.exec_id,
        fill.time,
        fill.account,
        venue,
        fill.side,
        fmt_decimal(fill.shares),
        fmt_float(fill.price),
        str(fill.perm_id),
        str(client_id),
        "0",  # liquidation
        fmt_decimal(fill.cum_qty),
        fmt_float(fill.avg_price),
        fill.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        str(fill.liquidity),
    ]
    if version >= 178:
        fields.append("0")  # pendingPriceRevision
    return fields


def exec_details_end(req_id: int) -> list[str]:
    return [str(Out.EXECUTION_DATA_END), "1", str(req_id)]


def commission_report(fill: Fill) -> list[str]:
    """``59, 1, execId, commission, currency, realizedPNL, yield, yieldRedemptionDate``."""
    return [
        str(Out.COMMISSION_REPORT),
        "1",
        fill.exec_id,
        fmt_float(fill.commission),
        fill.commission_currency,
        fmt_float(fill.realized_pnl),
        UNSET_DOUBLE,
        "",
    ]
