"""gunicorn settings: one worker process owning one IB session, gthread for concurrency.

Used as ``gunicorn --config python:worker.gunicorn_conf 'worker.app:create_app()'``.
One process because one process owns the IB client connection (one clientId); threads serve
concurrent deliveries, all funnelled into that session's event loop.

SIGTERM (Cloud Run gives 10 s): gunicorn stops accepting and running intents get up to
``graceful_timeout`` (7 s) to finish. Those still waiting on IB when ``HAND_BACK_BEFORE`` seconds
of that remain are handed back: the IB session is stopped, which fails their broker calls as
retryable, so each releases its lease and answers 503 and Pub/Sub redelivers at once (rather
than after the lease runs out). Then ``worker_exit`` disconnects, and only after gunicorn has
exited does the entrypoint stop the gateway.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

bind = os.environ.get("WORKER_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 120  # gthread heartbeats from its main loop; this only catches a wedged process
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "7"))
keepalive = 5
preload_app = False  # the IB session thread must start in the worker, not the master
accesslog = None  # the app logs every delivery itself, as JSON
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
control_socket_disable = True  # gunicorn 23+: one shared ~/.gunicorn socket would collide
limit_request_field_size = 16384  # long attribute headers on the unwrapped push path


HAND_BACK_BEFORE = 2.0  # seconds before graceful_timeout ends: time to release and answer


def _stop_broker(worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    pipeline = getattr(app, "config", {}).get("PIPELINE") if app is not None else None
    if pipeline is not None:
        pipeline.broker.stop(timeout=1.0)


def post_worker_init(worker: Any) -> None:
    """Chain a hand-back timer onto gunicorn's own SIGTERM handler."""
    previous = signal.getsignal(signal.SIGTERM)
    delay = max(0.0, graceful_timeout - HAND_BACK_BEFORE)

    def on_term(signum: int, frame: Any) -> None:
        timer = threading.Timer(delay, _stop_broker, (worker,))
        timer.daemon = True  # must not hold the process open once gunicorn is done
        timer.start()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def worker_exit(server: Any, worker: Any) -> None:
    """Disconnect from the gateway after the last request finished (graceful stop)."""
    _stop_broker(worker)
