"""The one import of the IB client library in ibsim's tests: ib_async, else ib_insync.

CI runs the ``ib_client`` tests twice: here with ib_async 2.1.0 and in a second virtualenv with
ib_insync 0.9.86, whose API is the same except where :func:`connect` smooths it over.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

try:
    import ib_async as lib
except ImportError:  # the ib_insync virtualenv
    import ib_insync as lib  # type: ignore[no-redef]

IB = lib.IB
Stock, Forex, Future, Index, Option = lib.Stock, lib.Forex, lib.Future, lib.Index, lib.Option
MarketOrder, LimitOrder, StopOrder = lib.MarketOrder, lib.LimitOrder, lib.StopOrder
ExecutionFilter = lib.ExecutionFilter
RequestError = lib.RequestError
TagValue = lib.TagValue
NAME = lib.__name__
SUPPORTS_RAISE_SYNC_ERRORS = "raiseSyncErrors" in inspect.signature(IB.connect).parameters


def connect(ib: Any, host: str, port: int, client_id: int = 1, timeout: float = 4.0) -> Any:
    """Connect with full sync, request errors raised, and sync errors raised where supported."""
    ib.RaiseRequestErrors = True
    extra = {"raiseSyncErrors": True} if SUPPORTS_RAISE_SYNC_ERRORS else {}
    return ib.connect(host, port, clientId=client_id, timeout=timeout, **extra)


def wait_for(ib: Any, condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Let the client's loop run until ``condition()`` is truthy (event-driven, no fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"condition not met within {timeout} s")
        try:
            ib.waitOnUpdate(timeout=min(remaining, 0.2))
        except ConnectionError:
            continue  # the server dropped the client: that may be what we wait for
    return result
