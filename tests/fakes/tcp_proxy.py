"""A loopback TCP proxy that injects network faults between a client and a server.

Tests put it between a Google client library (gRPC over plain HTTP/2) and an official emulator
to simulate outages without stopping the emulator::

    with TcpProxy(("127.0.0.1", emulator_port)) as proxy:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.address)
        ...
        proxy.cut()      # open connections see EOF; new ones are accepted and closed at once
        proxy.freeze()   # a hung server: sockets stay open, no byte moves either way
        proxy.restore()  # back to normal (bytes held by freeze() are delivered)
        proxy.fail_next(2)  # the next two new connections are closed right after accept

Concurrency: one accept thread, plus two pump threads per connection pair (one per direction).
The control methods may be called from any thread; one condition guards all state. Sockets are
shut down (which wakes a thread blocked on them) and closed only while holding that lock, and a
pair is closed only after both of its pumps have exited, so no thread ever uses a file
descriptor that another thread has closed (and the OS may have handed out again).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from dataclasses import dataclass
from types import TracebackType

_CHUNK = 65536
_CONNECT_TIMEOUT_S = 5.0
_JOIN_TIMEOUT_S = 5.0


@dataclass(eq=False)
class _Pair:
    """A client connection and its upstream connection.

    Attributes:
        client: The socket accepted from the client.
        upstream: The socket connected to the target.
        shut: Both sockets were shut down; the pumps are exiting.
        running: Pump threads not yet finished (the last one closes the sockets).
    """

    client: socket.socket
    upstream: socket.socket
    shut: bool = False
    running: int = 2


def _shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    """Shut a socket down, ignoring "not connected" (the peer may already be gone)."""
    with contextlib.suppress(OSError):
        sock.shutdown(how)


class TcpProxy:
    """Forward 127.0.0.1:port to a target, with switchable faults.

    Attributes:
        target: (host, port) every accepted connection is forwarded to.
        port: The listening port (set by start()).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._cond = threading.Condition()
        self._pairs: set[_Pair] = set()
        self._cut = False
        self._frozen = False
        self._fail_budget = 0
        self._stopping = False
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread: threading.Thread | None = None
        self._pump_threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        """host:port of the proxy, as the *_EMULATOR_HOST variables expect it."""
        return f"127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """Connection pairs currently open through the proxy."""
        with self._cond:
            return len(self._pairs)

    def start(self) -> TcpProxy:
        """Listen on a free loopback port and start accepting.

        Raises:
            RuntimeError: The proxy was started before.
        """
        if self._listener is not None:
            raise RuntimeError("TcpProxy.start() called twice")
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._listener.setblocking(False)  # a client that gave up between select and accept
        self._accept_thread = threading.Thread(
            target=self._accept_loop,
            args=(self._listener,),
            name=f"tcp-proxy-{self.port}",
            daemon=True,
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and join all threads. Idempotent."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._shut_all()
        self._wake_w.send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(_JOIN_TIMEOUT_S)
        for thread in self._pump_threads:
            thread.join(_JOIN_TIMEOUT_S)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def cut(self) -> None:
        """Close every open connection at once and refuse new ones until restore()."""
        with self._cond:
            self._cut = True
            self._shut_all()

    def freeze(self) -> None:
        """Keep connections open but forward nothing either way until restore()."""
        with self._cond:
            self._frozen = True

    def restore(self) -> None:
        """End cut() and freeze(); bytes held while frozen are delivered now."""
        with self._cond:
            self._cut = False
            self._frozen = False
            self._cond.notify_all()

    def fail_next(self, n: int = 1) -> None:
        """Close the next n new connections right after accept (a blip).

        Connections count in the order the proxy accepts them; a client's connect() can return
        before that, so one made just before this call may still be among the n.
        """
        with self._cond:
            self._fail_budget += n

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _shut_all(self) -> None:
        """Shut down every pair (caller holds the lock); their pumps then close them."""
        for pair in self._pairs:
            pair.shut = True
            _shutdown(pair.client)
            _shutdown(pair.upstream)
        self._pairs.clear()
        self._cond.notify_all()  # pumps held by freeze() must see `shut`

    def _accept_loop(self, listener: socket.socket) -> None:
        """Accept until stop(); a wake-up byte on the socketpair ends the wait."""
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                selector.select()
                if self._stopping:
                    return
                try:
                    client, _ = listener.accept()
                except BlockingIOError:
                    continue
                self._admit(client)

    def _admit(self, client: socket.socket) -> None:
        """Connect an accepted client to the target, or close it if a fault says so."""
        if self._refuse():
            client.close()
            return
        try:
            upstream = socket.create_connection(self.target, timeout=_CONNECT_TIMEOUT_S)
        except OSError:
            client.close()  # the target is down: the client sees its connection closed
            return
        upstream.settimeout(None)
        client.settimeout(None)
        with self._cond:
            if self._cut or self._stopping:  # cut() while we were connecting
                client.close()
                upstream.close()
                return
            self._start_pair(_Pair(client, upstream))

    def _refuse(self) -> bool:
        """Whether the connection just accepted must be closed (cut, or a fail_next budget)."""
        with self._cond:
            if self._cut or self._stopping:
                return True
            if self._fail_budget > 0:
                self._fail_budget -= 1
                return True
            return False

    def _start_pair(self, pair: _Pair) -> None:
        """Register a pair and start its two pumps (caller holds the lock)."""
        self._pairs.add(pair)
        self._pump_threads = [t for t in self._pump_threads if t.is_alive()]
        directions = ((pair.client, pair.upstream, ">"), (pair.upstream, pair.client, "<"))
        for src, dst, arrow in directions:
            thread = threading.Thread(
                target=self._pump,
                args=(pair, src, dst),
                name=f"tcp-proxy-{self.port}{arrow}",
                daemon=True,
            )
            self._pump_threads.append(thread)
            thread.start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        """Copy src -> dst until EOF, an error or a shutdown; pass a half-close on."""
        try:
            while chunk := src.recv(_CHUNK):
                if not self._wait_flowing(pair):
                    return
                dst.sendall(chunk)
            if self._wait_flowing(pair):
                _shutdown(dst, socket.SHUT_WR)  # the peer's FIN, forwarded
        except OSError:
            self._shut_pair(pair)  # a reset on one side resets the other
        finally:
            self._pump_done(pair)

    def _wait_flowing(self, pair: _Pair) -> bool:
        """Block while frozen; return False if the pair was shut down meanwhile."""
        with self._cond:
            self._cond.wait_for(lambda: pair.shut or not self._frozen)
            return not pair.shut

    def _shut_pair(self, pair: _Pair) -> None:
        """Shut both sockets of one pair and forget it."""
        with self._cond:
            if pair.shut:
                return
            pair.shut = True
            _shutdown(pair.client)
            _shutdown(pair.upstream)
            self._pairs.discard(pair)
            self._cond.notify_all()

    def _pump_done(self, pair: _Pair) -> None:
        """Count a finished pump; the second one closes both sockets."""
        with self._cond:
            pair.running -= 1
            if pair.running:
                return
            self._pairs.discard(pair)
            pair.client.close()
            pair.upstream.close()
