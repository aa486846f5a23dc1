"""Flask routes, and the wiring of the parts for one gunicorn worker process.

Routes:
- ``POST /``: Pub/Sub push (wrapped or unwrapped) and Eventarc / structured CloudEvents.
- ``POST /intents/<name>``: direct calls (JSON params body, ``Idempotency-Key`` header).
- ``POST /dead-letters``: push from each dead-letter topic; gives a dead-lettered key its
  ``failed`` outcome (``dead_lettered``) unless it has one, then acks.
- ``GET /healthz``: process liveness (Cloud Run's startup and liveness probes).
- ``GET /readyz``: 200 only while the IB session is connected and synced.
- ``GET /intents``: the intents and the JSON Schema of their params.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import timedelta
from typing import Any

from flask import Flask, Response, jsonify, request

from worker import edge, logs
from worker.broker.session import BrokerSession
from worker.config import Settings, TradingConfig, firestore_config_loader, load_settings
from worker.holdings import Books
from worker.intents import REGISTRY, json_schemas
from worker.outcomes import Publisher
from worker.pipeline import Pipeline, Reply
from worker.recording import recorder_for
from worker.runs import RunStore

log = logging.getLogger(__name__)
OVERSIZE_READ_CAP = 32 * 1024 * 1024  # hash at most this much of a hostile body, then stop
CHUNK = 64 * 1024


def build_pipeline(settings: Settings) -> Pipeline:
    """The production parts: Firestore, Pub/Sub and a started broker session."""
    from google.cloud import firestore

    client = firestore.Client(project=settings.project_id, database=settings.firestore_database)
    runs = RunStore(
        client,
        settings.runs_collection,
        settings.deployment,
        settings.lease_seconds,
        timedelta(days=settings.retention_days),
    )
    broker = BrokerSession(
        settings.ib_host, settings.ib_port, settings.ib_client_id, settings.ib_connect_timeout
    )
    broker.start()
    config = TradingConfig(firestore_config_loader(client, settings), settings.config_cache_seconds)
    recorder = recorder_for(
        settings.project_id, settings.bq_dataset, settings.bigquery_api_endpoint
    )
    publisher = Publisher(settings.project_id, settings.results_topic)
    books = Books(client, settings.trading_mode)
    return Pipeline(settings, runs, publisher, broker, config, recorder, books)


def create_app(pipeline: Pipeline | None = None) -> Flask:
    """The WSGI app (gunicorn: ``worker.app:create_app()``)."""
    if pipeline is None:
        settings = load_settings()
        logs.setup(settings.log_level)
        pipeline = build_pipeline(settings)
    app = Flask(__name__)
    app.config["PIPELINE"] = pipeline
    _routes(app, pipeline)
    log.info(
        "worker started: mode %s, deployment %s, IB %s:%s clientId %s",
        pipeline.settings.trading_mode,
        pipeline.settings.deployment,
        pipeline.settings.ib_host,
        pipeline.settings.ib_port,
        pipeline.settings.ib_client_id,
    )
    return app


def _routes(app: Flask, pipeline: Pipeline) -> None:
    @app.post("/")
    def push() -> Response:
        return _deliver(pipeline, None)

    @app.post("/intents/<path:name>")
    def direct(name: str) -> Response:
        return _deliver(pipeline, name)

    @app.post("/dead-letters")
    def dead_letters() -> Response:
        return _deliver(pipeline, None, dead_letter=True)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", pid=os.getpid())

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        status = pipeline.broker.status()
        return jsonify(status), 200 if status["ready"] else 503

    @app.get("/intents")
    def intents() -> Response:
        schemas = json_schemas()
        return jsonify(
            {
                n: {
                    "description": s.description,
                    "places_orders": s.places_orders,
                    "params_schema": schemas[n],
                }
                for n, s in REGISTRY.items()
            }
        )

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        # A bug, not the caller's fault: 503 lets Pub/Sub retry (and dead-letter at the end).
        code = getattr(exc, "code", None)
        if isinstance(code, int) and 400 <= code < 500:
            return jsonify(error={"code": "http", "message": str(exc)}), code
        log.exception("unhandled error")
        return jsonify(
            error={"code": "internal", "message": "internal error", "retryable": True}
        ), 503


def _deliver(pipeline: Pipeline, direct_intent: str | None, dead_letter: bool = False) -> Response:
    headers = dict(request.headers)
    with logs.bound(
        trace=logs.trace_from_header(
            request.headers.get("X-Cloud-Trace-Context"), pipeline.settings.project_id
        )
    ):
        delivery = _read_delivery(headers, pipeline.settings.max_body_bytes, direct_intent)
        if dead_letter:
            return _respond(pipeline.dead_letter(delivery))
        return _respond(pipeline.handle(delivery, direct=direct_intent is not None))


def _read_delivery(headers: dict[str, str], limit: int, direct_intent: str | None) -> edge.Delivery:
    """Read the body with a bound: a 413 would be a nack, and Pub/Sub would redeliver forever."""
    stream = request.stream
    body = stream.read(limit + 1)
    if len(body) <= limit:
        return edge.decode(headers, body, direct_intent)
    digest = hashlib.sha256(body)
    read = len(body)
    while read < OVERSIZE_READ_CAP and (chunk := stream.read(CHUNK)):
        digest.update(chunk)
        read += len(chunk)
    return edge.oversized(headers, body[:4096], digest.hexdigest(), limit)


def _respond(reply: Reply) -> Response:
    response = jsonify(reply.body) if reply.body else Response(status=reply.status)
    response.status_code = reply.status
    return response


def app_context_pipeline(app: Flask) -> Any:
    """The pipeline behind an app (gunicorn hooks use it for a graceful stop)."""
    return app.config["PIPELINE"]
