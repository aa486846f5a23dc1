"""Request handlers: one function per inbound message id, ``(session, fields) -> None``.

Handlers run on the simulator's event loop with its lock held; they read requests through
``ibsim.messages.requests``, ask the model, and answer through ``ibsim.messages`` encoders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ibsim.handlers import (
    account,
    basics,
    depth,
    history,
    market,
    mktdata,
    orders,
    reference,
    unmodelled,
)

if TYPE_CHECKING:
    from ibsim.session import Session

Handler = Callable[["Session", list[str]], None]

# Where the request id (or order id) sits in messages, so errors can name it — also for the
# messages ibsim does not implement (their callers would otherwise wait for a timeout).
REQ_ID_AT: dict[int, int] = {
    1: 2, 3: 1, 7: 2, 9: 2, 10: 2, 20: 1, 21: 2, 22: 1, 50: 2, 52: 2, 54: 2, 55: 2, 62: 2,
    67: 2, 74: 2, 76: 2, 78: 1, 79: 1, 81: 1, 83: 1, 84: 1, 86: 1, 87: 1, 88: 1, 92: 1, 94: 1,
    96: 1, 97: 1, 100: 1, 102: 1, 104: 1,
}  # fmt: skip

HANDLERS: dict[int, Handler] = {
    **unmodelled.handlers(REQ_ID_AT),
    **basics.HANDLERS,
    **account.HANDLERS,
    **orders.HANDLERS,
    **market.HANDLERS,
    **mktdata.HANDLERS,
    **history.HANDLERS,
    **depth.HANDLERS,
    **reference.HANDLERS,
}
