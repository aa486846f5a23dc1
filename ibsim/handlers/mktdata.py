"""reqMktData: top of book, generic ticks, snapshots and market data types.

What a gateway does, and ibsim with it:

- Top of book is sampled (about every 250 ms) and only what changed is sent: a price with its
  size when the price moved, the size alone when only the size moved, the day's volume, the
  last trade's time when a trade happened. The previous close comes once per subscription.
- ``snapshot`` and regulatory snapshots: the ticks once, tickSnapshotEnd, then nothing more.
- genericTickList: ``mdoff`` (no top of book), 165 (misc stats), 233 (RT volume), 236
  (shortable) are modelled; any other is refused with a clear 321 (as IB refuses ticks that
  are not legal for the contract), and a snapshot with generic ticks too.
- Options also get tickOptionComputation for the bid, ask, last and model (ibsim.options).
- marketDataType: with live data (a scenario option, on by default) the data is live (1) while
  the market trades, whatever type was asked; frozen (2) after hours when 2 or 4 was asked.
  Without live data: 1 and 2 are error 354; 3 is delayed; 4 delayed, frozen after hours.
  Without delayed data either (scenario option ``delayed_market_data``): 1 and 2 are 354 without
  "Delayed market data is available.", 3 and 4 are 10168.
  Each switch is announced with a marketDataType message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ibsim import hours, stats
from ibsim.catalog import kind
from ibsim.handlers.market import resolve_one
from ibsim.handlers.state import Ticker
from ibsim.messages import In
from ibsim.messages import market as msg
from ibsim.messages.requests import BadRequest, FieldReader, read_mkt_data
from ibsim.model import Instrument, Quote, SecType

if TYPE_CHECKING:
    from ibsim.session import Session

SAMPLE_SECONDS = 0.25  # IB's top-of-book sampling interval for stocks and futures
MDOFF = "mdoff"
GENERIC = {"165": "Misc. Stats", "233": "RTVolume", "236": "Shortable"}
STOCKS_ONLY = frozenset({"236"})
NOT_SUBSCRIBED = "Requested market data is not subscribed."
DELAYED_AVAILABLE = "Delayed market data is available."
DELAYED_NOT_ENABLED = "Delayed market data is not enabled."
SNAPSHOT_GENERIC = "Snapshot market data subscription is not applicable to generic ticks"


def req_mkt_data(s: Session, fields: list[str]) -> None:
    """``1, 11, reqId, contract, ..., genericTicks, snapshot, regulatory, options`` ->
    marketDataType, tickReqParams, ticks, and for a snapshot tickSnapshotEnd."""
    req = read_mkt_data(fields)
    inst = resolve_one(s, req.req_id, req.contract)
    if inst is None:
        return
    generic = generic_ticks(req.generic_ticks, inst)
    if req.snapshot and generic - {MDOFF}:
        raise BadRequest(SNAPSHOT_GENERIC)
    ticker = Ticker(inst, s.market_data_type, generic)
    if data_type(s, ticker) is None:
        s.error(req.req_id, *refusal(s, ticker))
        return
    sample(s, req.req_id, ticker)
    if req.snapshot:
        s.send(msg.tick_snapshot_end(req.req_id))
    else:
        s.subs.tickers[req.req_id] = ticker


def generic_ticks(text: str, inst: Instrument) -> frozenset[str]:
    """The genericTickList, checked against what ibsim models for the contract.

    Raises:
        BadRequest: 321, naming the ticks ibsim models.
    """
    asked = frozenset(t.strip() for t in text.split(",") if t.strip())
    for tick in sorted(asked - {MDOFF}):
        if tick not in GENERIC or (tick in STOCKS_ONLY and inst.sec_type != SecType.STOCK):
            legal = ",".join(f"{t}({name})" for t, name in GENERIC.items())
            raise BadRequest(
                f"Incorrect generic tick list of {tick}. Legal ones ibsim models for "
                f"({inst.sec_type}) are: {legal},{MDOFF} (236 for stocks only)"
            )
    return asked


def cancel_mkt_data(s: Session, fields: list[str]) -> None:
    s.subs.tickers.pop(FieldReader(fields, 2).int(), None)


def data_type(s: Session, ticker: Ticker) -> int | None:
    """The marketDataType the subscription gets now; None = not subscribed (see refusal)."""
    trading = s.sim.market.is_open(ticker.instrument, outside_rth=True)
    frozen_wanted = ticker.requested_type in (2, 4)
    options = s.sim.scenario.options
    if options.live_market_data:
        return 2 if frozen_wanted and not trading else 1
    if ticker.requested_type in (1, 2) or not options.delayed_market_data:
        return None
    return 4 if frozen_wanted and not trading else 3


def refusal(s: Session, ticker: Ticker) -> tuple[int, str]:
    """IB's error code and text for a subscription data_type refuses."""
    if s.sim.scenario.options.delayed_market_data:
        return 354, f"{NOT_SUBSCRIBED} {DELAYED_AVAILABLE}"
    if ticker.requested_type in (1, 2):
        return 354, NOT_SUBSCRIBED
    return 10168, f"{NOT_SUBSCRIBED} {DELAYED_NOT_ENABLED}"


def sample_due(s: Session, now: float) -> None:
    """Sample every subscription whose interval has passed (the simulator's timer)."""
    for req_id, ticker in list(s.subs.tickers.items()):
        if now >= ticker.due:
            ticker.due = now + SAMPLE_SECONDS
            sample(s, req_id, ticker)


def sample(s: Session, req_id: int, ticker: Ticker) -> None:
    """Send what changed on one subscription since it was last sampled."""
    _announce_type(s, req_id, ticker)
    market = s.sim.market
    if ticker.started and not market.is_open(ticker.instrument, outside_rth=True):
        return  # nothing trades: the values stand
    quote = market.quote(ticker.instrument)
    if ticker.top:
        _send_top(s, req_id, ticker, quote)
    if ticker.top and ticker.instrument.sec_type == SecType.OPTION:
        _send_option_ticks(s, req_id, ticker, quote)
    if "233" in ticker.generic:
        _send_rt_volume(s, req_id, ticker, quote)
    if not ticker.started:
        _send_once(s, req_id, ticker, quote)
    ticker.started = True


def _announce_type(s: Session, req_id: int, ticker: Ticker) -> None:
    current = data_type(s, ticker) or 3
    if current == ticker.data_type:
        return
    s.send(msg.market_data_type(req_id, current))
    if not ticker.data_type:  # a gateway follows the first type with the request's params
        s.send(msg.tick_req_params(req_id, ticker.instrument.min_tick))
    ticker.data_type = current


def _send_top(s: Session, req_id: int, ticker: Ticker, quote: Quote) -> None:
    delayed = ticker.data_type in (3, 4)
    traded = False
    for tick_type, fields in msg.top_of_book(req_id, quote, delayed=delayed).items():
        old = ticker.sent.get(tick_type)
        if old == fields:
            continue
        ticker.sent[tick_type] = fields
        traded = traded or tick_type in (4, 68)
        same_price = old is not None and tick_type in msg.SIZE_OF and old[4] == fields[4]
        s.send(_size_only(req_id, tick_type, fields) if same_price else fields)
    if traded:
        epoch = int(s.sim.clock.now().timestamp())
        s.send(msg.last_time_tick(req_id, epoch, delayed=delayed))


def _send_option_ticks(s: Session, req_id: int, ticker: Ticker, quote: Quote) -> None:
    """tickOptionComputation for the bid, ask, last and model, when they changed."""
    for name, greeks in s.sim.market.option_computations(ticker.instrument, quote).items():
        tick_type = msg.OPTION_TICKS[name]
        fields = msg.option_computation(req_id, tick_type, greeks)
        if ticker.sent.get(tick_type) != fields:
            ticker.sent[tick_type] = fields
            s.send(fields)


def _size_only(req_id: int, price_tick: int, fields: list[str]) -> list[str]:
    return msg.tick_size(req_id, msg.SIZE_OF[price_tick], float(fields[5]))


def _send_once(s: Session, req_id: int, ticker: Ticker, quote: Quote) -> None:
    """What a subscription gets once: the previous close, shortability, misc stats."""
    if ticker.top:
        s.send(msg.close_tick(req_id, quote, delayed=ticker.data_type in (3, 4)))
    if "236" in ticker.generic:
        s.send(msg.tick_generic(req_id, msg.SHORTABLE, stats.SHORTABLE))
        s.send(msg.tick_size(req_id, msg.SHORTABLE_SHARES, stats.SHORTABLE_SHARES))
    if "165" in ticker.generic:
        _send_misc_stats(s, req_id, ticker)


def _send_rt_volume(s: Session, req_id: int, ticker: Ticker, quote: Quote) -> None:
    """Tick 48 ``price;size;ms;totalVolume;VWAP;singleTrade`` whenever a trade happened."""
    now = s.sim.clock.now()
    trade = f"{quote.last};{quote.last_size:g};"
    old = ticker.sent.get(msg.RT_VOLUME)
    if old is not None and old[4].startswith(trade):
        return
    vwap = stats.vwap(s.sim.market, ticker.instrument, now)
    value = f"{trade}{int(now.timestamp() * 1000)};{quote.volume:g};{vwap};true"
    ticker.sent[msg.RT_VOLUME] = msg.tick_string(req_id, msg.RT_VOLUME, value)
    s.send(ticker.sent[msg.RT_VOLUME])


def _send_misc_stats(s: Session, req_id: int, ticker: Ticker) -> None:
    inst = ticker.instrument
    today = hours.local_day(kind(inst), s.sim.clock.now())
    for name, value in stats.week_ranges(s.sim.market, inst, today).items():
        s.send(msg.tick_price(req_id, msg.MISC_STATS[name], value, 0))
    average = s.sim.market.average_daily_volume(inst)
    s.send(msg.tick_size(req_id, msg.AVERAGE_VOLUME, average))


HANDLERS = {
    In.REQ_MKT_DATA: req_mkt_data,
    In.CANCEL_MKT_DATA: cancel_mkt_data,
}
