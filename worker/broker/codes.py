"""IB error codes, classified in one table (tws-protocol.md, "Error codes that matter"), and
the order statuses that mean "the gateway has it" and "it is over"."""

from __future__ import annotations

import enum


class Kind(enum.Enum):
    CONNECTIVITY_LOST = "connectivity_lost"  # gateway lost IB's servers; socket still up
    RESTORED_DATA_LOST = "restored_data_lost"  # resubscribe everything
    RESTORED_DATA_KEPT = "restored_data_kept"
    INFORMATIONAL = "informational"  # farm status notices: nothing to do
    CLIENT_ID_IN_USE = "client_id_in_use"
    PACING = "pacing"  # slow down and retry
    REJECTED = "rejected"  # an order or request refused for good
    NOT_FOUND = "not_found"  # no security definition
    WARNING = "warning"
    DELAYED_INSTEAD = "delayed_instead"  # live market data not subscribed; delayed is there
    NO_MARKET_DATA = "no_market_data"  # nothing will come on this request (see CODES)
    OTHER = "other"


CODES: dict[Kind, frozenset[int]] = {
    Kind.CONNECTIVITY_LOST: frozenset({1100, 2110}),
    Kind.RESTORED_DATA_LOST: frozenset({1101}),
    Kind.RESTORED_DATA_KEPT: frozenset({1102}),
    Kind.INFORMATIONAL: frozenset({2103, 2104, 2105, 2106, 2107, 2108, 2119, 2157, 2158, 2159}),
    Kind.CLIENT_ID_IN_USE: frozenset({326}),
    Kind.PACING: frozenset({100, 162, 420}),
    Kind.REJECTED: frozenset({103, 104, 105, 110, 201, 203, 321, 10148}),
    Kind.NOT_FOUND: frozenset({200}),
    Kind.WARNING: frozenset({202, 399}),
    # Answers to reqMktData (IB's message-code table): 354 not subscribed ("Delayed market data
    # is available." when it is), 10089 needs an extra API subscription (likewise), 10167
    # "displaying delayed market data". Nothing will come on 10168 (delayed data is not enabled
    # either) or 10197 (another session of the login, e.g. a phone, holds the live data: no
    # fallback to stale delayed prices the user did not choose). Not here: 10090 (part of the
    # data is not subscribed, the rest still flows).
    Kind.DELAYED_INSTEAD: frozenset({354, 10089, 10167}),
    Kind.NO_MARKET_DATA: frozenset({10168, 10197}),
}
_BY_CODE = {code: kind for kind, codes in CODES.items() for code in codes}


def classify(code: int) -> Kind:
    """The kind of an IB error code; unknown codes are ``Kind.OTHER``."""
    return _BY_CODE.get(code, Kind.OTHER)


# The delayed market data type standing in for a live one: 1 live -> 3 delayed, 2 frozen -> 4
# delayed frozen. Types 3 and 4 are delayed already and have nothing to fall back to.
DELAYED_TYPE = {1: 3, 2: 4}


def is_retryable(code: int) -> bool:
    """True when the same request may succeed later (connectivity, pacing, client id)."""
    return classify(code) in {Kind.CONNECTIVITY_LOST, Kind.PACING, Kind.CLIENT_ID_IN_USE}


# Order statuses (tws-protocol.md, "Order status lifecycle"). An order in LIVE was acknowledged
# by the gateway; one in TERMINAL will not change again (Inactive: rejected or expired).
LIVE_STATUSES = frozenset({"PreSubmitted", "Submitted", "PendingCancel", "ApiPending", "Filled"})
TERMINAL_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
