"""ibsim's one option chain: SPY weekly options.

Listed are the next four Friday expiries (a Friday counts until its own close) and strikes
480 to 720 every 5 (around SPY's seed price). Contracts are made on demand from their conId,
which encodes the expiry, strike and right, so a restart finds held options again.
"""

from __future__ import annotations

from datetime import date, timedelta

from ibsim.model import Instrument, SecType

UNDERLYING = "SPY"
UNDERLYING_CON_ID = 756733
MULTIPLIER = 100.0
STRIKES = tuple(float(k) for k in range(480, 721, 5))
LISTED_EXPIRIES = 4
FRIDAY = 4
BASE_ID = 1_500_000_000  # option conIds: BASE_ID + days since EPOCH * 1000 + strike * 2 + put
EPOCH = date(2020, 1, 1)
_EXCHANGES = "SMART,AMEX,BATS,BOX,CBOE,CBOE2,EDGX,EMERALD,IBUSOPT,ISE,MEMX,MIAX,NASDAQOM,PHLX"
_ORDER_TYPES = "ACTVTIM,ADJUST,ALERT,ALLOC,DAY,GTC,IOC,LMT,MKT,STP,STPLMT"
RIGHTS = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}


def expiries(today: date) -> list[date]:
    """The listed expiries on ``today``: the next four Fridays, today's included."""
    first = today + timedelta(days=(FRIDAY - today.weekday()) % 7)
    return [first + timedelta(weeks=n) for n in range(LISTED_EXPIRIES)]


def con_id(expiry: date, strike: float, right: str) -> int:
    """The conId of one option (see BASE_ID)."""
    put = 1 if right == "P" else 0
    return BASE_ID + (expiry - EPOCH).days * 1000 + STRIKES.index(strike) * 2 + put


def decode(number: int) -> tuple[date, float, str] | None:
    """(expiry, strike, right) of an option conId, or None for any other number."""
    days, rest = divmod(number - BASE_ID, 1000)
    index, put = divmod(rest, 2)
    if number < BASE_ID or index >= len(STRIKES):
        return None
    return EPOCH + timedelta(days=days), STRIKES[index], "P" if put else "C"


def option(underlying: Instrument, expiry: date, strike: float, right: str) -> Instrument:
    """One SPY option; its local symbol is the OCC symbol, as at IB."""
    occ = f"{UNDERLYING:<6}{expiry:%y%m%d}{right}{int(strike * 1000):08d}"
    return Instrument(
        con_id=con_id(expiry, strike, right),
        symbol=UNDERLYING,
        sec_type=SecType.OPTION,
        exchange="SMART",
        primary_exchange="",
        currency="USD",
        local_symbol=occ,
        trading_class=UNDERLYING,
        long_name=underlying.long_name,
        min_tick=0.01,
        multiplier=MULTIPLIER,
        last_trade_date=f"{expiry:%Y%m%d}",
        order_types=_ORDER_TYPES,
        valid_exchanges=_EXCHANGES,
        market_rule_ids=",".join(["26"] * len(_EXCHANGES.split(","))),  # 0.01 everywhere
        industry=underlying.industry,
        category=underlying.category,
        strike=strike,
        right=right,
        underlying_con_id=underlying.con_id,
    )


def listed(underlying: Instrument, today: date) -> list[Instrument]:
    """Every listed option of the chain, by expiry, strike, call before put."""
    return [
        option(underlying, expiry, strike, right)
        for expiry in expiries(today)
        for strike in STRIKES
        for right in ("C", "P")
    ]
