"""Hand-built model objects for the golden-frame tests (no broker, no server)."""

from __future__ import annotations

from ibsim.model import (
    ContractQuery,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    SecType,
)

SPY = Instrument(
    con_id=756733,
    symbol="SPY",
    sec_type=SecType.STOCK,
    exchange="SMART",
    primary_exchange="ARCA",
    currency="USD",
    local_symbol="SPY",
    trading_class="SPY",
    long_name="SPDR S&P 500 ETF TRUST",
    min_tick=0.01,
    stock_type="ETF",
    time_zone="US/Eastern",
    trading_hours="20261118:0400-20261118:2000",
    liquid_hours="20261118:0930-20261118:1600",
)

EURUSD = Instrument(
    con_id=12087792,
    symbol="EUR",
    sec_type=SecType.CASH,
    exchange="IDEALPRO",
    primary_exchange="",
    currency="USD",
    local_symbol="EUR.USD",
    trading_class="EUR.USD",
    long_name="European Monetary Union Euro",
    min_tick=5e-05,
)

MES = Instrument(
    con_id=730283085,
    symbol="MES",
    sec_type=SecType.FUTURE,
    exchange="CME",
    primary_exchange="",
    currency="USD",
    local_symbol="MESZ6",
    trading_class="MES",
    long_name="Micro E-Mini S&P 500 Stock Price Index",
    min_tick=0.25,
    multiplier=5.0,
    last_trade_date="20261218",
    time_zone="US/Central",
)

ACCOUNT = "DU1234567"


def order(
    status: OrderStatus = OrderStatus.SUBMITTED,
    *,
    inst: Instrument = SPY,
    order_type: str = "LMT",
    lmt_price: float | None = 600.5,
    algo: tuple[str, tuple[tuple[str, str], ...]] = ("", ()),
) -> Order:
    req = OrderRequest(
        client_id=1,
        order_id=7,
        contract=ContractQuery(symbol=inst.symbol, sec_type=str(inst.sec_type), exchange="SMART"),
        action="BUY",
        total_quantity=100,
        order_type=order_type,
        lmt_price=lmt_price,
        account=ACCOUNT,
        order_ref="run-42/leg-1",
        algo_strategy=algo[0],
        algo_params=algo[1],
    )
    return Order(request=req, instrument=inst, perm_id=1000007, status=status)


def fill(realized: float | None = None) -> Fill:
    return Fill(
        exec_id="0000e0d5.6571a5c3.01.01",
        order_key=(1, 7),
        perm_id=1000007,
        instrument=SPY,
        account=ACCOUNT,
        side="BOT",
        shares=100,
        price=600.25,
        time="20261118 15:30:01 UTC",
        cum_qty=100,
        avg_price=600.25,
        order_ref="run-42/leg-1",
        commission=1.0,
        commission_currency="USD",
        realized_pnl=realized,
    )
