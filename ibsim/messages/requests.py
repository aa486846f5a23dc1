"""Decoders for inbound requests: fields in, model objects out.

Only the parts of a request that ibsim acts on are kept, but every conditional block of the
placeOrder layout is walked so the fields after it (the algo, whatIf) are read from the right
place at both 176 and 178 (from 177 on the client no longer sends ``faProfile``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ibsim.model import ContractQuery, ExecutionFilter, OrderRequest

_UNSET_DOUBLE = 1.7976931348623157e308
_UNSET_INT = 2147483647


class BadRequest(Exception):
    """A request ibsim cannot act on; answered with ``code`` (321 unless stated)."""

    def __init__(self, text: str, code: int = 321) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class FieldReader:
    """A cursor over one message's fields (the message id already consumed)."""

    def __init__(self, fields: list[str], start: int = 1) -> None:
        self._fields = fields
        self._pos = start

    def str(self) -> str:
        if self._pos >= len(self._fields):
            raise BadRequest("message too short")
        value = self._fields[self._pos]
        self._pos += 1
        return value

    def int(self, default: int = 0) -> int:
        text = self.str()
        try:
            return int(text) if text else default
        except ValueError as exc:
            raise BadRequest(f"not an integer: {text!r}") from exc

    def float(self) -> float | None:
        """A double; empty and IB's unset sentinel are ``None``."""
        text = self.str()
        try:
            value = float(text) if text else None
        except ValueError as exc:
            raise BadRequest(f"not a number: {text!r}") from exc
        return None if value is None or value >= _UNSET_DOUBLE else value

    def bool(self) -> bool:
        return self.int() != 0

    def skip(self, count: int) -> None:
        for _ in range(count):
            self.str()


def read_contract(r: FieldReader) -> ContractQuery:
    """The 12 contract fields of requests: conId .. tradingClass with primaryExchange."""
    return ContractQuery(
        con_id=r.int(),
        symbol=r.str(),
        sec_type=r.str(),
        last_trade_date=r.str(),
        strike=r.float() or 0.0,
        right=r.str(),
        multiplier=r.str(),
        exchange=r.str(),
        primary_exchange=r.str(),
        currency=r.str(),
        local_symbol=r.str(),
        trading_class=r.str(),
    )


def _refuse_combo(contract: ContractQuery) -> None:
    if contract.sec_type == "BAG":
        raise BadRequest("combo (BAG) contracts are not supported by ibsim", 200)


@dataclass(frozen=True)
class MktDataRequest:
    req_id: int
    contract: ContractQuery
    generic_ticks: str
    snapshot: bool  # snapshot or regulatory snapshot: ticks, tickSnapshotEnd, nothing more


def read_mkt_data(fields: list[str]) -> MktDataRequest:
    """``1, 11, reqId, contract(12), deltaNeutral, genericTicks, snapshot, regSnapshot, opts``."""
    r = FieldReader(fields, 2)
    req_id = r.int()
    contract = read_contract(r)
    _refuse_combo(contract)
    if r.bool():
        r.skip(3)  # delta-neutral conId, delta, price
    generic = r.str()
    snapshot, regulatory = r.bool(), r.bool()
    return MktDataRequest(req_id, contract, generic, snapshot or regulatory)


@dataclass(frozen=True)
class ContractDetailsRequest:
    req_id: int
    contract: ContractQuery


def read_contract_details(fields: list[str]) -> ContractDetailsRequest:
    """``9, 8, reqId, contract(12), includeExpired, secIdType, secId[, issuerId]``."""
    r = FieldReader(fields, 2)
    req_id = r.int()
    contract = read_contract(r)
    r.skip(1)  # includeExpired
    sec_id_type, sec_id = r.str(), r.str()
    return ContractDetailsRequest(
        req_id, dataclasses.replace(contract, sec_id_type=sec_id_type, sec_id=sec_id)
    )


@dataclass(frozen=True)
class HistoricalRequest:
    req_id: int
    contract: ContractQuery
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


def read_historical(fields: list[str]) -> HistoricalRequest:
    """``20, reqId, contract(12), includeExpired, end, barSize, duration, useRTH, whatToShow,
    formatDate, keepUpToDate, chartOptions`` (no version field)."""
    r = FieldReader(fields, 1)
    req_id = r.int()
    contract = read_contract(r)
    _refuse_combo(contract)
    r.skip(1)  # includeExpired
    end, bar_size, duration = r.str(), r.str(), r.str()
    use_rth, what = r.bool(), r.str()
    format_date = r.int(1)
    return HistoricalRequest(
        req_id, contract, end, bar_size, duration, use_rth, what, format_date, r.bool()
    )


def read_execution_filter(fields: list[str]) -> tuple[int, ExecutionFilter]:
    """``7, 3, reqId, clientId, account, time, symbol, secType, exchange, side``."""
    r = FieldReader(fields, 2)
    req_id = r.int()
    flt = ExecutionFilter(
        client_id=r.int(),
        account=r.str(),
        time=r.str(),
        symbol=r.str(),
        sec_type=r.str(),
        exchange=r.str(),
        side=r.str(),
    )
    return req_id, flt


@dataclass(frozen=True)
class PlaceOrder:
    request: OrderRequest
    what_if: bool


def read_place_order(fields: list[str], client_id: int, version: int) -> PlaceOrder:
    """Decode ``3, orderId, contract, order`` as the client libraries lay it out."""
    r = FieldReader(fields, 1)
    order_id = r.int()
    contract = read_contract(r)
    _refuse_combo(contract)
    r.skip(2)  # secIdType, secId
    head = _read_order_head(r)
    head.update(_read_order_middle(r, version))
    algo, params = _read_algo(r)
    r.skip(1)  # algoId
    what_if = r.bool()
    request = OrderRequest(
        client_id=client_id,
        order_id=order_id,
        contract=contract,
        algo_strategy=algo,
        algo_params=params,
        **head,
    )
    return PlaceOrder(request, what_if)


def _read_order_head(r: FieldReader) -> dict[str, Any]:
    """action .. outsideRth."""
    head: dict[str, Any] = {
        "action": r.str(),
        "total_quantity": r.float() or 0.0,
        "order_type": r.str(),
        "lmt_price": r.float(),
        "aux_price": r.float(),
        "tif": r.str() or "DAY",
        "oca_group": r.str(),
        "account": r.str(),
    }
    r.skip(2)  # openClose, origin
    head["order_ref"] = r.str()
    head["transmit"] = r.bool()
    head["parent_id"] = r.int()
    r.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    head["outside_rth"] = r.bool()
    return head


def _read_order_middle(r: FieldReader, version: int) -> dict[str, Any]:
    """hidden .. dncPresent, honouring every conditional block of the layout."""
    r.skip(3)  # hidden, sharesAllocation, discretionaryAmt
    middle: dict[str, Any] = {"good_after_time": r.str(), "good_till_date": r.str()}
    r.skip(3)  # faGroup, faMethod, faPercentage
    if version < 177:
        r.skip(1)  # faProfile
    r.skip(4)  # modelCode, shortSaleSlot, designatedLocation, exemptCode
    middle["oca_type"] = r.int()
    r.skip(15)  # rule80A .. overridePercentageConstraints
    r.skip(2)  # volatility, volatilityType
    if r.str():  # deltaNeutralOrderType
        r.skip(9)  # its aux price and eight delta-neutral fields
    else:
        r.skip(1)
    r.skip(6)  # continuousUpdate .. scaleSubsLevelSize
    increment = r.float()
    if increment is not None and increment > 0:
        r.skip(7)
    r.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if r.str():  # hedgeType
        r.skip(1)
    r.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if r.bool():  # delta-neutral contract
        r.skip(3)
    return middle


def _read_algo(r: FieldReader) -> tuple[str, tuple[tuple[str, str], ...]]:
    algo = r.str()
    if not algo:
        return "", ()
    count = r.int()
    return algo, tuple((r.str(), r.str()) for _ in range(count))
