"""One API client connection: handshake, startApi, pacing, request dispatch, subscriptions.

Concurrency contract: a Session lives on the simulator's event loop. ``send`` may be called
from any thread (broker events raised by a test thread hop onto the loop); everything else runs
on the loop with the simulator's lock held while the model is touched.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING

from ibsim import wire
from ibsim.handlers import HANDLERS, REQ_ID_AT, Handler
from ibsim.handlers.state import Subscriptions
from ibsim.messages import In
from ibsim.messages import session as msg
from ibsim.messages.requests import BadRequest
from ibsim.pacing import MessageRate, Verdict

if TYPE_CHECKING:
    from ibsim.server import Simulator

log = logging.getLogger("ibsim.session")

START_API = "71"
HANDSHAKE_TIMEOUT = 10.0
PACE_API = "+PACEAPI"  # connect option: the gateway paces bursts instead of error 100
LINGER = 2.0  # seconds a flooding client's input is drained after error 100, before closing
ORDER_REQUESTS = frozenset({In.PLACE_ORDER, In.CANCEL_ORDER})  # answered late by a fault


class Session:
    """One connected API client (see the module docstring for the threading rules)."""

    def __init__(
        self, sim: Simulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.version = 0
        self.client_id: int | None = None
        self.logged_in = False
        self.market_data_type = 1
        self.auto_bind = False
        self.subs = Subscriptions()
        self.rate = MessageRate(sim.max_msg_rate)
        self.withheld: list[list[str]] = []
        self.closed = False
        self.paced = False  # +PACEAPI
        self.draining = False  # disconnected for flooding: reading and dropping, not answering
        self.ack_delay = 0.0  # > 0 while an order request is answered late (fault mode)
        self._lane: deque[tuple[float, bytes]] = deque()  # held-back order messages, in order
        self._outbox: deque[tuple[bytes, bool]] = deque()  # (frame, is an order event)
        self._outbox_lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    # --- life cycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until either side closes it; never raises."""
        try:
            await asyncio.wait_for(self._handshake(), HANDSHAKE_TIMEOUT)
            while not self.closed:
                payload = await wire.read_payload(self.reader)
                if self.paced and (delay := self.rate.wait_time()) > 0:
                    await asyncio.sleep(delay)  # +PACEAPI: the burst waits, no error 100
                self._on_message(wire.split_fields(payload))
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the peer went away (or never finished the handshake)
        except wire.ProtocolError as exc:
            log.warning("closing client %s: %s", self.client_id, exc)
        finally:
            self.close()

    async def _handshake(self) -> None:
        hello = await wire.read_hello(self.reader)
        self.version = wire.negotiate(hello)
        self.paced = PACE_API in hello.options.split()
        self.writer.write(wire.handshake_reply(self.version, self.sim.connection_time()))
        fields = wire.split_fields(await wire.read_payload(self.reader))
        if not fields or fields[0] != START_API or len(fields) < 3:
            raise wire.ProtocolError(f"expected startApi, got {fields[:2]}")
        if not wire.served(self.version):
            self._refuse_version(hello)
            return
        self._start_api(_to_int(fields[2]))

    def _refuse_version(self, hello: wire.Hello) -> None:
        """Too old a client: say so (502, what clients show for "cannot connect") and close,
        rather than send it message layouts it would misread."""
        self.error(-1, *msg.version_refusal(hello.min_version, hello.max_version))
        self.close()

    def _start_api(self, client_id: int) -> None:
        refusal = self.sim.attach(self, client_id)
        if refusal:
            code, text = refusal
            self.error(-1, code, text)
            self.close()
            return
        self.client_id = client_id
        if self.sim.faults.not_logged_in:
            return  # port open, gateway not logged in: no accounts, no nextValidId
        self.logged_in = True
        with self.sim.lock:
            self.send(msg.managed_accounts(self.sim.broker.accounts))
            self.send(msg.next_valid_id(self.sim.broker.next_valid_id(client_id)))
        for code, text in msg.FARM_NOTICES:
            self.error(-1, code, text)

    def close(self) -> None:
        """Close the socket and leave the simulator's client table (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        self.sim.detach(self)

    def _drain_and_close(self) -> None:
        """Disconnect a flooding client so that error 100 reaches it: FIN after the error,
        then read and drop what it still sends (closing with unread input would reset the
        connection, and a reset can discard the error), closing after LINGER at most."""
        self.draining = True
        self.sim.detach(self)
        if self.writer.can_write_eof():
            self.writer.write_eof()
        self._loop.call_later(LINGER, self.close)

    def abort(self) -> None:
        """Drop the connection abruptly, as a crashing gateway would."""
        transport = self.writer.transport
        if transport is not None:
            transport.abort()
        self.close()

    # --- inbound ------------------------------------------------------------------------

    def _on_message(self, fields: list[str]) -> None:
        if self.draining:
            return
        verdict = self.rate.hit()
        if verdict is not Verdict.OK:
            self.error(-1, 100, _rate_text(self.rate))
            if verdict is Verdict.DISCONNECT:
                self._drain_and_close()
                return
        if not fields:
            raise wire.ProtocolError("empty message")
        msg_id = _to_int(fields[0])
        if not self.logged_in:
            return  # a gateway that is not logged in answers nothing
        self._dispatch(msg_id, fields)

    def _dispatch(self, msg_id: int, fields: list[str]) -> None:
        handler = HANDLERS.get(msg_id)
        if handler is None:
            self._unknown(msg_id, fields)
            return
        if msg_id in ORDER_REQUESTS:
            self.ack_delay = self.sim.faults.order_ack_delay
        try:
            self._handle(handler, msg_id, fields)
        finally:
            self.ack_delay = 0.0

    def _handle(self, handler: Handler, msg_id: int, fields: list[str]) -> None:
        try:
            with self.sim.lock:
                handler(self, fields)
        except BadRequest as exc:
            self.error(_guess_req_id(msg_id, fields), exc.code, _validation_text(exc))
        except Exception:
            log.exception("handler for message %s failed", msg_id)
            self.error(-1, 321, f"Error validating request.-'{msg_id}' : cause - internal error")

    def _unknown(self, msg_id: int, fields: list[str]) -> None:
        # What an older gateway answers to a message it does not know.
        text = f"The TWS is out of date and must be upgraded. (ibsim: message id {msg_id})"
        self.error(_guess_req_id(msg_id, fields), 503, text)

    # --- outbound -----------------------------------------------------------------------

    def send(self, fields: list[str]) -> None:
        """Frame and write one message; safe from any thread, a no-op once closed.

        Messages leave in the order they were sent, whichever thread sent them (the broker
        may be driven from a test's thread and from the loop's timer, under one lock). While
        an order request is answered late (``ack_delay``), the answer is held back.
        """
        self._send(fields, order_event=False)

    def send_order_event(self, fields: list[str]) -> None:
        """An event about one of this client's orders (openOrder, orderStatus, execDetails,
        commissionReport): it never overtakes an answer to an order request held back before
        it, as on the gateway's single TCP stream. Safe from any thread."""
        self._send(fields, order_event=True)

    def _send(self, fields: list[str], *, order_event: bool) -> None:
        if self.closed or self.draining:
            return
        data = wire.frame(fields)
        on_loop = threading.get_ident() == self._loop_thread
        if on_loop and self.ack_delay > 0:
            self._hold(data, self.ack_delay)
            return
        with self._outbox_lock:
            self._outbox.append((data, order_event))
        if on_loop:
            self._flush()
        else:
            self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        """Write the outbox in order (on the loop); order events queue behind held acks."""
        while True:
            with self._outbox_lock:
                if not self._outbox:
                    return
                data, order_event = self._outbox.popleft()
            if order_event and self._lane:
                self._hold(data, 0.0)
            else:
                self._write(data)

    def _hold(self, data: bytes, delay: float) -> None:
        due = self._loop.time() + delay
        if self._lane:
            due = max(due, self._lane[-1][0])
        self._lane.append((due, data))
        if len(self._lane) == 1:
            self._loop.call_at(due, self._release)

    def _release(self) -> None:
        due, data = self._lane.popleft()
        self._write(data)
        while self._lane and self._lane[0][0] <= due:
            self._write(self._lane.popleft()[1])
        if self._lane:
            self._loop.call_at(self._lane[0][0], self._release)

    def _write(self, data: bytes) -> None:
        """Write on the loop unless the connection is gone. A peer that vanished (reset) is
        cleaned up quietly here: writing on would make asyncio log a warning per message."""
        if self.closed or self.draining:
            return
        if self.writer.is_closing():
            self.close()
            return
        self.writer.write(data)

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(msg.error(req_id, code, text, self.version))

    def send_end(self, name: str, fields: list[str]) -> None:
        """Send an end marker unless a fault delays or withholds it."""
        action, delay = self.sim.faults.end_marker_action(name)
        if action == "withhold":
            self.withheld.append(fields)
        elif action == "delay":
            self._loop.call_later(delay, self.send, fields)
        else:
            self.send(fields)

    def release_withheld(self) -> None:
        held, self.withheld = self.withheld, []
        for fields in held:
            self.send(fields)


def _to_int(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise wire.ProtocolError(f"not a number: {text[:20]!r}") from exc


def _guess_req_id(msg_id: int, fields: list[str]) -> int:
    index = REQ_ID_AT.get(msg_id)
    if index is None or index >= len(fields):
        return -1
    try:
        return int(fields[index])
    except ValueError:
        return -1


def _validation_text(exc: BadRequest) -> str:
    if exc.code != 321:
        return exc.text
    return f"Error validating request.-'bN' : cause - {exc.text}"


def _rate_text(rate: MessageRate) -> str:
    return f"Max rate of messages per second has been exceeded:max={rate.limit} rec={rate.count}"
