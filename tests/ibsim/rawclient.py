"""A minimal blocking TWS-protocol client for wire-level tests (no IB library involved)."""

from __future__ import annotations

import socket
import struct
import time


class RawClient:
    """Speaks the framing by hand so tests can count fields and send malformed bytes."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handshake(self, offer: bytes = b"v157..178") -> list[str]:
        self.sock.sendall(b"API\0" + struct.pack(">I", len(offer)) + offer)
        return self.recv()

    def connect(self, client_id: int = 1, offer: bytes = b"v157..178") -> list[list[str]]:
        """Handshake, startApi, and everything up to the last farm notice (2158)."""
        self.handshake(offer)
        self.send("71", "2", client_id, "")
        return self.recv_until(lambda f: f[0] == "4" and f[3] == "2158")

    def send(self, *fields: object) -> None:
        self.send_raw("".join(f"{f}\0" for f in fields).encode())

    def send_raw(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def recv(self) -> list[str]:
        """One message's fields; raises EOFError when the server closed the connection.

        Nothing is consumed until the whole frame is there, so a timeout loses nothing.
        """
        self._fill(4)
        (length,) = struct.unpack(">I", self._buf[:4])
        self._fill(4 + length)
        payload, self._buf = self._buf[4 : 4 + length], self._buf[4 + length :]
        return payload.decode().split("\0")[:-1]

    def recv_until(self, done) -> list[list[str]]:
        got = []
        while True:
            fields = self.recv()
            got.append(fields)
            if done(fields):
                return got

    def recv_for(self, seconds: float) -> list[list[str]]:
        """Every message that arrives within ``seconds`` (none is fine)."""
        old = self.sock.gettimeout()
        deadline = time.monotonic() + seconds
        got: list[list[str]] = []
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                got.append(self.recv())
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(old)
        return got

    def read_to_close(self) -> tuple[list[list[str]], str]:
        """Every message until the server closes, and how it closed: "eof" (a FIN) or
        "reset" (an RST, which may have discarded data sent just before it)."""
        got: list[list[str]] = []
        try:
            while True:
                got.append(self.recv())
        except EOFError:
            return got, "eof"
        except ConnectionResetError:
            return got, "reset"

    def wait_closed(self) -> bool:
        """Drain until the server closes; True if it did before the socket timeout."""
        try:
            while True:
                self.recv()
        except EOFError:
            return True
        except TimeoutError:
            return False

    def _fill(self, n: int) -> None:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self._buf += chunk


# placeOrder as ib_async 2.1.0 lays it out for a plain order (no combo legs, delta-neutral,
# scale, hedge, algo or conditions blocks): field names in order, with the library's defaults.
_ORDER_LAYOUT: tuple[tuple[str, str], ...] = (
    ("action", "BUY"), ("totalQuantity", "1"), ("orderType", "MKT"), ("lmtPrice", ""),
    ("auxPrice", ""), ("tif", ""), ("ocaGroup", ""), ("account", ""), ("openClose", "O"),
    ("origin", "0"), ("orderRef", ""), ("transmit", "1"), ("parentId", "0"),
    ("blockOrder", "0"), ("sweepToFill", "0"), ("displaySize", "0"), ("triggerMethod", "0"),
    ("outsideRth", "0"), ("hidden", "0"), ("sharesAllocation", ""), ("discretionaryAmt", "0"),
    ("goodAfterTime", ""), ("goodTillDate", ""), ("faGroup", ""), ("faMethod", ""),
    ("faPercentage", ""), ("faProfile", ""), ("modelCode", ""), ("shortSaleSlot", "0"),
    ("designatedLocation", ""), ("exemptCode", "-1"), ("ocaType", "0"), ("rule80A", ""),
    ("settlingFirm", ""), ("allOrNone", "0"), ("minQty", ""), ("percentOffset", ""),
    ("eTradeOnly", "0"), ("firmQuoteOnly", "0"), ("nbboPriceCap", ""),
    ("auctionStrategy", "0"), ("startingPrice", ""), ("stockRefPrice", ""), ("delta", ""),
    ("stockRangeLower", ""), ("stockRangeUpper", ""), ("overridePercentageConstraints", "0"),
    ("volatility", ""), ("volatilityType", ""), ("deltaNeutralOrderType", ""),
    ("deltaNeutralAuxPrice", ""), ("continuousUpdate", "0"), ("referencePriceType", ""),
    ("trailStopPrice", ""), ("trailingPercent", ""), ("scaleInitLevelSize", ""),
    ("scaleSubsLevelSize", ""), ("scalePriceIncrement", ""), ("scaleTable", ""),
    ("activeStartTime", ""), ("activeStopTime", ""), ("hedgeType", ""),
    ("optOutSmartRouting", "0"), ("clearingAccount", ""), ("clearingIntent", ""),
    ("notHeld", "0"), ("deltaNeutralContract", "0"), ("algoStrategy", ""), ("algoId", ""),
    ("whatIf", "0"), ("orderMiscOptions", ""), ("solicited", "0"), ("randomizeSize", "0"),
    ("randomizePrice", "0"), ("conditions", "0"), ("adjustedOrderType", ""),
    ("triggerPrice", ""), ("lmtPriceOffset", ""), ("adjustedStopPrice", ""),
    ("adjustedStopLimitPrice", ""), ("adjustedTrailingAmount", ""),
    ("adjustableTrailingUnit", "0"), ("extOperator", ""), ("softDollarTierName", ""),
    ("softDollarTierValue", ""), ("cashQty", ""), ("mifid2DecisionMaker", ""),
    ("mifid2DecisionAlgo", ""), ("mifid2ExecutionTrader", ""), ("mifid2ExecutionAlgo", ""),
    ("dontUseAutoPriceForHedge", "0"), ("isOmsContainer", "0"),
    ("discretionaryUpToLimitPrice", "0"), ("usePriceMgmtAlgo", ""), ("duration", ""),
    ("postToAts", ""), ("autoCancelParent", "0"), ("advancedErrorOverride", ""),
    ("manualOrderTime", ""),
)  # fmt: skip
_CONTRACT_LAYOUT = (
    "conId", "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right",
    "multiplier", "exchange", "primaryExchange", "currency", "localSymbol", "tradingClass",
)  # fmt: skip


def place_order_fields(
    order_id: int, contract: dict[str, str], version: int = 178, **order: object
) -> list[str]:
    """A placeOrder message as ib_async sends it; ``order`` overrides fields by their name."""
    unknown = set(order) - {name for name, _ in _ORDER_LAYOUT}
    if unknown:
        raise ValueError(f"not a placeOrder field: {sorted(unknown)}")
    fields = ["3", str(order_id), *(str(contract.get(n, "")) for n in _CONTRACT_LAYOUT), "", ""]
    for name, default in _ORDER_LAYOUT:
        if name == "faProfile" and version >= 177:
            continue  # gone from the layout at 177
        fields.append(str(order.get(name, default)))
    return fields
