"""Session-level messages: managed accounts, order ids, errors, time, farm notices."""

from __future__ import annotations

from ibsim import wire
from ibsim.messages import Out

# Farm-status notices a real gateway sends right after startApi (informational, 2100-2199).
FARM_NOTICES: tuple[tuple[int, str], ...] = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefil"),
)


def managed_accounts(accounts: list[str]) -> list[str]:
    """``15, 1, DU1,DU2`` — the libraries wait for a non-empty list before apiStart."""
    return [str(Out.MANAGED_ACCTS), "1", ",".join(accounts)]


def next_valid_id(order_id: int) -> list[str]:
    return [str(Out.NEXT_VALID_ID), "1", str(order_id)]


def error(req_id: int, code: int, text: str, version: int) -> list[str]:
    """``4, 2, reqId, code, text[, advancedOrderRejectJson]`` (the JSON field since v166)."""
    fields = [str(Out.ERR_MSG), "2", str(req_id), str(code), text]
    if version >= 166:
        fields.append("")
    return fields


def current_time(epoch_seconds: int) -> list[str]:
    return [str(Out.CURRENT_TIME), "1", str(epoch_seconds)]


def version_refusal(low: int, high: int) -> tuple[int, str]:
    """Error 502 for a client whose API versions are all older than ibsim's layouts."""
    return (
        502,
        f"Couldn't connect to TWS. ibsim speaks API server versions {wire.MIN_SERVED}-"
        f"{wire.MAX_VERSION}; this client offers v{low}..{high} (ib_insync before 0.9.86?): "
        "upgrade the client library.",
    )
