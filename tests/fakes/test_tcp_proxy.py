"""TcpProxy: faults on plain sockets, then with the real Firestore client and emulator."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import google.auth.credentials
import pytest
from google.api_core import exceptions as gexc
from google.cloud import firestore

from tests.fakes.tcp_proxy import TcpProxy
from worker.devstack.emulators import Emulators

_QUIET_S = 0.3  # how long "nothing arrives" is watched for; loopback answers in microseconds


class _Echo(socketserver.BaseRequestHandler):
    """Send every byte back until the client closes."""

    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """A loopback echo server; yields its (host, port)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    with server:
        thread = _start(lambda: server.serve_forever(poll_interval=0.02))
        yield server.server_address[:2]
        server.shutdown()
        thread.join(timeout=5)


def _start(target: Callable[[], None]) -> threading.Thread:
    """Run target in a daemon thread; return the thread."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _connect(address: tuple[str, int]) -> socket.socket:
    """A client socket with a short timeout, so a hung test fails instead of hanging."""
    return socket.create_connection(address, timeout=2)


def _roundtrip(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    """Send payload and read the echo of the same length."""
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload) and (chunk := sock.recv(4096)):
        got += chunk
    return got


def _closed_by_peer(sock: socket.socket, within: float = 2.0) -> bool:
    """Whether the peer closes (EOF) or resets the connection within `within` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll predicate every 10 ms until true or timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_bytes_flow_both_ways(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy, _connect(("127.0.0.1", proxy.port)) as sock:
        assert proxy.address == f"127.0.0.1:{proxy.port}"
        assert _roundtrip(sock, b"hello") == b"hello"
        assert _roundtrip(sock, b"x" * 200_000) == b"x" * 200_000
        assert proxy.connections == 1
    assert proxy.connections == 0


def test_client_close_ends_the_pair(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy:
        with _connect(("127.0.0.1", proxy.port)) as sock:
            assert _roundtrip(sock) == b"ping"
        assert _wait_for(lambda: proxy.connections == 0)


def test_cut_closes_open_and_new_connections(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy, _connect(("127.0.0.1", proxy.port)) as old:
        assert _roundtrip(old) == b"ping"
        proxy.cut()
        assert proxy.connections == 0
        assert _closed_by_peer(old)
        with _connect(("127.0.0.1", proxy.port)) as new:  # accepted, then closed at once
            assert _closed_by_peer(new)
        with _connect(echo) as direct:  # the target itself never went away
            assert _roundtrip(direct) == b"ping"


def test_restore_after_cut_accepts_again(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy:
        proxy.cut()
        proxy.restore()
        with _connect(("127.0.0.1", proxy.port)) as sock:
            assert _roundtrip(sock) == b"ping"


def test_freeze_holds_bytes_until_restore(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy, _connect(("127.0.0.1", proxy.port)) as sock:
        assert _roundtrip(sock) == b"ping"
        proxy.freeze()
        sock.sendall(b"held")
        sock.settimeout(_QUIET_S)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        with _connect(echo) as direct:  # a hung proxy, not a dead target
            assert _roundtrip(direct) == b"ping"
        assert proxy.connections == 1
        proxy.restore()
        sock.settimeout(2)
        assert sock.recv(4096) == b"held"


def test_cut_while_frozen_closes_the_connection(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy, _connect(("127.0.0.1", proxy.port)) as sock:
        proxy.freeze()
        sock.sendall(b"held")
        proxy.cut()
        assert _closed_by_peer(sock)


def test_fail_next_closes_exactly_one_new_connection(echo: tuple[str, int]) -> None:
    with TcpProxy(echo) as proxy, _connect(("127.0.0.1", proxy.port)) as before:
        # connect() returns once the kernel completed the handshake, maybe before the proxy
        # accepted it; a round trip makes sure `before` is not the one fail_next() counts.
        assert _roundtrip(before) == b"ping"
        proxy.fail_next(1)
        with _connect(("127.0.0.1", proxy.port)) as failed:
            assert _closed_by_peer(failed)
        with _connect(("127.0.0.1", proxy.port)) as after:
            assert _roundtrip(after) == b"ping"
        assert _roundtrip(before) == b"ping"  # connections already open are left alone


def test_target_down_closes_the_client() -> None:
    unused = socket.create_server(("127.0.0.1", 0))
    target = unused.getsockname()[:2]
    unused.close()  # nothing listens there now: the proxy's upstream connect is refused
    with TcpProxy(target) as proxy, _connect(("127.0.0.1", proxy.port)) as sock:
        assert _closed_by_peer(sock)


def test_stop_closes_connections_and_joins_threads(echo: tuple[str, int]) -> None:
    proxy = TcpProxy(echo).start()
    sock = _connect(("127.0.0.1", proxy.port))
    assert _roundtrip(sock) == b"ping"
    proxy.freeze()  # a pump blocked in a freeze must not keep stop() waiting
    sock.sendall(b"held")
    proxy.stop()
    assert _closed_by_peer(sock)
    sock.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(f"tcp-proxy-{proxy.port}")]
    with pytest.raises(ConnectionRefusedError):
        _connect(("127.0.0.1", proxy.port))


# --- the real Firestore client (gRPC over plain HTTP/2) through the proxy to the emulator ---


def _host_port(host: str) -> tuple[str, int]:
    """Split "127.0.0.1:PORT"."""
    name, port = host.rsplit(":", 1)
    return name, int(port)


@pytest.fixture
def firestore_proxy(
    emulators: Emulators, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TcpProxy, firestore.DocumentReference]]:
    """A proxy to the Firestore emulator and a document of a client that talks through it."""
    with TcpProxy(_host_port(emulators.firestore_host)) as proxy:
        # Read once, when the client is built: the client's channel goes to the proxy for good.
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.address)
        client = firestore.Client(
            project=emulators.project,
            credentials=google.auth.credentials.AnonymousCredentials(),
        )
        doc = client.collection("tcp-proxy-tests").document(uuid.uuid4().hex)
        doc.set({"n": 1}, timeout=5)
        yield proxy, doc
        client.close()


def _recovery_s(doc: firestore.DocumentReference, budget: float = 5.0) -> float:
    """Seconds until a get() on the same client succeeds again, polling every 20 ms."""
    start = time.monotonic()
    while True:
        try:
            doc.get(timeout=2, retry=None)
            return time.monotonic() - start
        except gexc.ServiceUnavailable:
            if time.monotonic() - start > budget:
                raise
            time.sleep(0.02)


@pytest.mark.emulators
def test_firestore_cut_then_restore_reconnects(
    firestore_proxy: tuple[TcpProxy, firestore.DocumentReference],
) -> None:
    proxy, doc = firestore_proxy
    assert doc.get(timeout=2, retry=None).to_dict() == {"n": 1}
    assert proxy.connections == 1
    proxy.cut()
    start = time.monotonic()
    # Observed (grpc 1.85, google-cloud-firestore 2.x): ServiceUnavailable (503, "failed to
    # connect to all addresses ... Socket closed" or "Connection reset by peer") after 2-3 ms.
    # The client's default retry treats it as retryable; with retry=None it surfaces at once.
    with pytest.raises(gexc.ServiceUnavailable):
        doc.get(timeout=2, retry=None)
    assert time.monotonic() - start < 1.0
    proxy.restore()
    # Observed: 0.01 s to 1.2 s. If the client tried (and failed) to connect during the cut,
    # gRPC waits out its reconnect backoff (initial 1 s, jitter +-20%) and fails calls fast
    # with ServiceUnavailable meanwhile; otherwise the next call reconnects at once. Repeated
    # failed attempts grow the backoff x1.6: a 3 s outage took 2.3 s to recover, 6 s took 3.6 s.
    assert _recovery_s(doc) < 3.0
    assert doc.get(timeout=2, retry=None).to_dict() == {"n": 1}


@pytest.mark.emulators
def test_firestore_freeze_times_out_then_recovers(
    firestore_proxy: tuple[TcpProxy, firestore.DocumentReference],
) -> None:
    proxy, doc = firestore_proxy
    proxy.freeze()
    start = time.monotonic()
    # The connection stays up and the request is sent but never answered: the call's own
    # deadline fires (DeadlineExceeded, 504), after 2.0 s. The emulator channel has no
    # keepalive ping configured, so gRPC does not notice the hung peer by itself.
    with pytest.raises(gexc.DeadlineExceeded):
        doc.get(timeout=2, retry=None)
    assert time.monotonic() - start < 3.0
    proxy.restore()
    # Same connection, no reconnect: observed 0.01-0.05 s.
    assert _recovery_s(doc) < 1.0
    assert doc.get(timeout=2, retry=None).to_dict() == {"n": 1}
