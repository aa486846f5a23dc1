"""A minimal blocking TWS-protocol client for wire-level tests (no IB library involved)."""

from __future__ import annotations

import socket
import struct


class RawClient:
    """Speaks the framing by hand so tests can count fields and send malformed bytes."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handshake(self, offer: bytes = b"v157..178") -> list[str]:
        self.sock.sendall(b"API\0" + struct.pack(">I", len(offer)) + offer)
        return self.recv()

    def connect(self, client_id: int = 1, offer: bytes = b"v157..178") -> list[list[str]]:
        """Handshake, startApi, and everything up to the last farm notice (2158)."""
        self.handshake(offer)
        self.send("71", "2", client_id, "")
        return self.recv_until(lambda f: f[0] == "4" and f[3] == "2158")

    def send(self, *fields: object) -> None:
        self.send_raw("".join(f"{f}\0" for f in fields).encode())

    def send_raw(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def recv(self) -> list[str]:
        """One message's fields; raises EOFError when the server closed the connection."""
        (length,) = struct.unpack(">I", self._read(4))
        return self._read(length).decode().split("\0")[:-1]

    def recv_until(self, done) -> list[list[str]]:
        got = []
        while True:
            fields = self.recv()
            got.append(fields)
            if done(fields):
                return got

    def wait_closed(self) -> bool:
        """Drain until the server closes; True if it did before the socket timeout."""
        try:
            while True:
                self.recv()
        except EOFError:
            return True
        except TimeoutError:
            return False

    def _read(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data
