"""Cloud Run's front end in miniature: one stable push URL, forwarded to the live instance.

Pub/Sub pushes to one address; Cloud Run sends each request to an instance it chooses. The soak
needs the same indirection: the worker is SIGKILLed and restarted on its own port, and while it
is frozen (SIGSTOP) a second instance takes its traffic. ``PushRouter`` forwards every request
to the instance set with ``route_to``, or answers 503 while there is none (Pub/Sub retries it,
as it does when Cloud Run has no instance ready).

A frozen instance holds the requests it was given. Real Pub/Sub gives up on such a push at its
ack deadline and delivers elsewhere meanwhile, but the emulator pushes at most two requests of
a subscription at a time (measured, CLI 528) and does not time them out: two requests held by a
frozen instance would stop every delivery. ``abandon(url)`` plays Pub/Sub's part: requests held
by that instance are answered 503 at once (a nack: the message is redelivered) while the
instance keeps them and may still answer them after SIGCONT, into the void, as at Cloud Run.

Concurrency: one thread per request (``ThreadingHTTPServer``) plus one per forwarded request;
``route_to`` and ``abandon`` may be called from any thread.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FORWARD_TIMEOUT_S = 120.0  # longer than any run; a frozen instance holds its requests
ABANDON_POLL_S = 0.1
_HOP_HEADERS = ("Content-Type", "Authorization", "User-Agent")


class PushRouter:
    """Forwards POSTs on 127.0.0.1:<port> to the instance chosen by ``route_to``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: str | None = None
        self._abandoned: set[str] = set()
        self.answers: Counter[int] = Counter()
        self.journal: list[tuple[float, str, str, int]] = []  # (time, path, message id, status)
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="push-router", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The push endpoint's base URL, e.g. http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PushRouter:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def route_to(self, base_url: str | None) -> None:
        """Send new requests to ``base_url`` (http://HOST:PORT), or answer 503 (None)."""
        with self._lock:
            self._target = base_url
            self._abandoned.discard(base_url or "")

    def abandon(self, base_url: str) -> None:
        """Answer 503 for every request ``base_url`` holds now (it is frozen; see above)."""
        with self._lock:
            self._abandoned.add(base_url)

    def _is_abandoned(self, base_url: str) -> bool:
        with self._lock:
            return base_url in self._abandoned

    def target(self) -> str | None:
        with self._lock:
            return self._target

    def forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """Forward one request; (status, body). No instance or a failed one: 503."""
        target = self.target()
        status, answer = (503, b"") if target is None else self._await(target, path, headers, body)
        with self._lock:
            self.answers[status] += 1
            self.journal.append((time.time(), path, _message_id(body), status))
        return status, answer

    def write_journal(self, path: Path) -> None:
        """Every request and its answer, one line each (for diagnosing a run)."""
        with self._lock:
            lines = [f"{t:.3f} {p} {m} {s}" for t, p, m, s in self.journal]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _await(
        self, target: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        """Forward on a thread of its own; give up (503) once ``target`` is abandoned."""
        reply: list[tuple[int, bytes]] = []
        done = threading.Event()

        def post() -> None:
            reply.append(_post(target + path, headers, body))
            done.set()

        threading.Thread(target=post, name="push-forward", daemon=True).start()
        while not done.wait(ABANDON_POLL_S):
            if self._is_abandoned(target):
                return 503, b""
        return reply[0]


def _message_id(body: bytes) -> str:
    try:
        return str(json.loads(body)["message"]["messageId"])
    except (ValueError, KeyError, TypeError):
        return "?"


def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=FORWARD_TIMEOUT_S)
    try:
        conn.request("POST", parts.path or "/", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 503, b""  # the instance died or vanished mid-request: a nack, Pub/Sub retries
    finally:
        conn.close()


class _Server(ThreadingHTTPServer):
    """The router's server: a peer that hangs up mid-request (an instance killed, the emulator
    giving up) is routine here, not an error worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(router: PushRouter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k in _HOP_HEADERS if (v := self.headers.get(k))}
            status, answer = router.forward(self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return  # the worker logs every delivery itself

    return Handler
