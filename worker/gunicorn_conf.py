"""gunicorn settings: one worker process owning one IB session, gthread for concurrency.

Used as ``gunicorn --config python:worker.gunicorn_conf 'worker.app:create_app()'``.
One process because one process owns the IB client connection (one clientId); threads serve
concurrent deliveries, all funnelled into that session's event loop.

SIGTERM (Cloud Run gives 10 s): gunicorn stops accepting, running intents get
``graceful_timeout`` (7 s) to finish — their idempotency leases cover any cut off — and then
``worker_exit`` disconnects from the gateway cleanly, before the entrypoint stops the gateway.
"""

from __future__ import annotations

import os
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
limit_request_field_size = 16384  # long attribute headers on the unwrapped push path


def worker_exit(server: Any, worker: Any) -> None:
    """Disconnect from the gateway after the last request finished (graceful stop)."""
    app = getattr(worker, "wsgi", None)
    pipeline = getattr(app, "config", {}).get("PIPELINE") if app is not None else None
    if pipeline is not None:
        pipeline.broker.stop(timeout=2.0)
