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
    Kind.WARNING: frozenset({202, 399, 10197}),
}
_BY_CODE = {code: kind for kind, codes in CODES.items() for code in codes}


def classify(code: int) -> Kind:
    """The kind of an IB error code; unknown codes are ``Kind.OTHER``."""
    return _BY_CODE.get(code, Kind.OTHER)


def is_retryable(code: int) -> bool:
    """True when the same request may succeed later (connectivity, pacing, client id)."""
    return classify(code) in {Kind.CONNECTIVITY_LOST, Kind.PACING, Kind.CLIENT_ID_IN_USE}


# Order statuses (tws-protocol.md, "Order status lifecycle"). An order in LIVE was acknowledged
# by the gateway; one in TERMINAL will not change again (Inactive: rejected or expired).
LIVE_STATUSES = frozenset({"PreSubmitted", "Submitted", "PendingCancel", "ApiPending", "Filled"})
TERMINAL_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
