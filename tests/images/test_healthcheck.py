"""gateway-image/scripts/healthcheck.sh against a loopback server speaking the API handshake."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.images.conftest import SCRIPTS

HEALTHCHECK = SCRIPTS / "healthcheck.sh"
HELLO = b"API\0" + struct.pack(">I", 9) + b"v157..178"


def _frame(*fields: bytes) -> bytes:
    payload = b"".join(f + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


REPLIES: dict[str, Callable[[socket.socket], None]] = {
    "good": lambda c: c.sendall(_frame(b"176", b"20260105 09:30:00 EST")),
    "long": lambda c: c.sendall(_frame(b"178", b"20260105 09:30:00 " + b"X" * 300)),
    "split": lambda c: [c.sendall(part) for part in (b"\0\0", b"\0\x09176\0", b"1234\0")],
    "silent": lambda c: c.recv(1),
    "hangup": lambda c: None,
    "one field": lambda c: c.sendall(_frame(b"176")),
    "old version": lambda c: c.sendall(_frame(b"100", b"20260105 09:30:00 EST")),
    "not a version": lambda c: c.sendall(_frame(b"abc", b"20260105 09:30:00 EST")),
    "huge frame": lambda c: c.sendall(struct.pack(">I", 1 << 20)),
}


class HandshakeServer:
    """A one-thread TCP server on 127.0.0.1 that answers each connection per `mode`."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.mode = "good"
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                self.received.append(_recv_exactly(conn, len(HELLO)))
                REPLIES[self.mode](conn)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.sock.close()
        self.thread.join(timeout=5)


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def server() -> Iterator[HandshakeServer]:
    srv = HandshakeServer()
    yield srv
    srv.close()


def _check(port: int, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(HEALTHCHECK)],
        env={"PATH": "/usr/bin:/bin", "IB_PORT": str(port), "HEALTHCHECK_TIMEOUT": "1", **env},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@pytest.mark.parametrize("mode", ["good", "long", "split"])
def test_healthy_when_handshake_answered(server: HandshakeServer, mode: str) -> None:
    server.mode = mode
    result = _check(server.port)
    assert result.returncode == 0, result.stderr
    assert "healthy" in result.stdout
    assert server.received == [HELLO]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("silent", "no handshake reply"),
        ("hangup", "no handshake reply"),
        ("one field", "has 1 fields, expected 2"),
        ("old version", "server version '100'"),
        ("not a version", "server version 'abc'"),
        ("huge frame", "not an API handshake reply"),
    ],
)
def test_unhealthy_replies(server: HandshakeServer, mode: str, reason: str) -> None:
    server.mode = mode
    result = _check(server.port)
    assert result.returncode == 1
    assert reason in result.stderr


def test_unhealthy_when_port_closed() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    result = _check(port)
    assert result.returncode == 1
    assert "not accepting connections" in result.stderr


def test_port_follows_trading_mode() -> None:
    result = _check(0, TRADING_MODE="live", IB_HOST="127.0.0.1", IB_PORT="")
    assert "127.0.0.1:4001" in result.stderr + result.stdout


def test_against_ibsim_when_available() -> None:
    ibsim = pytest.importorskip("ibsim")
    if not hasattr(ibsim, "run_in_thread"):
        pytest.skip("ibsim.run_in_thread is not there yet")
    with ibsim.run_in_thread(port=0) as sim:
        result = _check(sim.port, IB_HOST=sim.host)
    assert result.returncode == 0, result.stderr
