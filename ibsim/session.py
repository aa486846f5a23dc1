"""One API client connection: handshake, startApi, pacing, request dispatch, subscriptions.

Concurrency contract: a Session lives on the simulator's event loop. ``send`` may be called
from any thread (broker events raised by a test thread hop onto the loop); everything else runs
on the loop with the simulator's lock held while the model is touched.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from ibsim import wire
from ibsim.handlers import HANDLERS, REQ_ID_AT
from ibsim.handlers.state import Subscriptions
from ibsim.messages import session as msg
from ibsim.messages.requests import BadRequest
from ibsim.pacing import MessageRate, Verdict

if TYPE_CHECKING:
    from ibsim.server import Simulator

log = logging.getLogger("ibsim.session")

START_API = "71"
HANDSHAKE_TIMEOUT = 10.0


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
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    # --- life cycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until either side closes it; never raises."""
        try:
            await asyncio.wait_for(self._handshake(), HANDSHAKE_TIMEOUT)
            while not self.closed:
                self._on_message(wire.split_fields(await wire.read_payload(self.reader)))
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the peer went away (or never finished the handshake)
        except wire.ProtocolError as exc:
            log.warning("closing client %s: %s", self.client_id, exc)
        finally:
            self.close()

    async def _handshake(self) -> None:
        hello = await wire.read_hello(self.reader)
        self.version = wire.negotiate(hello)
        self.writer.write(wire.handshake_reply(self.version, self.sim.connection_time()))
        fields = wire.split_fields(await wire.read_payload(self.reader))
        if not fields or fields[0] != START_API or len(fields) < 3:
            raise wire.ProtocolError(f"expected startApi, got {fields[:2]}")
        self._start_api(_to_int(fields[2]))

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

    def abort(self) -> None:
        """Drop the connection abruptly, as a crashing gateway would."""
        transport = self.writer.transport
        if transport is not None:
            transport.abort()
        self.close()

    # --- inbound ------------------------------------------------------------------------

    def _on_message(self, fields: list[str]) -> None:
        verdict = self.rate.hit()
        if verdict is not Verdict.OK:
            self.error(-1, 100, _rate_text(self.rate))
            if verdict is Verdict.DISCONNECT:
                self.close()
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
        """Frame and write one message; safe from any thread, a no-op once closed."""
        if self.closed:
            return
        data = wire.frame(fields)
        if threading.get_ident() == self._loop_thread:
            self.writer.write(data)
        else:
            self._loop.call_soon_threadsafe(self._write_later, data)

    def _write_later(self, data: bytes) -> None:
        if not self.closed:
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
