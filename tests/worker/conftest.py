"""In-process lifecycle tests: the real Flask app and Pipeline, the real emulators, ibsim.

No gunicorn and no push subscription: tests POST to Flask's test client and read the outcome
events from the results topic. Everything that crosses a process boundary is still real (the
Firestore and Pub/Sub emulators, ibsim over the TWS socket protocol with the real IB client
library). Lifecycle tests run in a second or two each this way; the end-to-end files
(``test_e2e_*``) keep covering gunicorn and Pub/Sub push.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from google.cloud import firestore

from ibsim.market import Clock
from tests.worker.pushes import JSON, push_body
from worker.app import create_app
from worker.broker.session import BrokerSession
from worker.config import Settings, TradingConfig, firestore_config_loader, load_settings
from worker.devstack.emulators import firestore_client_at
from worker.holdings import Books
from worker.intents import REGISTRY, IntentSpec
from worker.intents.results import RESULTS
from worker.outcomes import Publisher
from worker.pipeline import Pipeline
from worker.recording import BigQueryRecorder
from worker.runs import RunStore

# Wednesday 18 Nov 2026, 10:30 in New York: US stocks, FX and CME futures all trade.
MARKET_OPEN = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)
ACCOUNT = "DU1234567"


@dataclass
class Stack:
    """One in-process worker on the emulators and ibsim, and what tests need to drive it."""

    client: FlaskClient
    pipeline: Pipeline
    sim: Any
    pubsub: Any
    settings: Settings
    firestore: firestore.Client
    extra: dict[str, Any] = field(default_factory=dict)

    def push(
        self,
        intent: str,
        params: dict[str, Any] | None = None,
        message_id: str = "m-1",
        **attributes: str,
    ) -> Any:
        """POST one wrapped push delivery to ``/``; returns the test client's response."""
        envelope = {"intent": intent, "params": params or {}}
        body = push_body(envelope, message_id, attributes)
        return self.client.post("/", data=body, headers=JSON)

    def post_raw(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, data=body, headers=headers or JSON)

    def record(self, key: str) -> dict[str, Any] | None:
        return self.pipeline.runs.get(key)

    def outcomes(self, expected: int, timeout: float = 10.0) -> list[Any]:
        """Outcome events published so far (waits for ``expected``, then a short tail).

        Every succeeded result is validated against its documented model (results.py).
        """
        got = self.pubsub.pull_outcomes(timeout=timeout, expected=expected)
        got += self.pubsub.pull_outcomes(timeout=0.5, expected=1)
        for outcome in got:
            model = RESULTS.get(outcome.subject)
            if outcome.kind == "succeeded" and model is not None:
                model.model_validate(outcome.data["result"])
        return got


def ready_session(sim: Any, client_id: int) -> BrokerSession:
    """A broker session of our own on ``sim``, connected and ready; the caller stops it."""
    session = BrokerSession(sim.host, sim.port, client_id, 3.0)
    session.start()
    if not session.wait_ready(15):
        session.stop()
        raise AssertionError("the IB session never became ready")
    return session


def stack_settings(emulators: Any, pubsub: Any, sim: Any, **env: str) -> Settings:
    return load_settings(
        {
            "PROJECT_ID": emulators.project,
            "TRADING_MODE": "paper",
            "IB_HOST": "127.0.0.1",
            "IB_PORT": str(sim.port),
            "IB_CLIENT_ID": "7",
            "IB_CONNECT_TIMEOUT": "3",
            "RESULTS_TOPIC": pubsub.names.results_topic,
            "LEASE_SECONDS": "30",
            "INTENT_TIMEOUT_SECONDS": "15",
            **env,
        }
    )


@pytest.fixture
def inproc(
    emulator_env: Any,
    clean_firestore: Any,
    pubsub: Any,
    ibsim_factory: Callable[..., Any],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Stack]]:
    """Factory: ``inproc(scenario=..., firestore_host=..., clock=..., **env)`` -> Stack.

    ``firestore_host`` points the run store (only) at another address, e.g. a TcpProxy in
    front of the emulator, to cut Firestore in the middle of a run.
    """
    pubsub.create_topic(pubsub.names.results_topic)
    pubsub.create_pull_subscription(pubsub.names.results_subscription, pubsub.names.results_topic)
    sessions: list[BrokerSession] = []

    def make(
        scenario: str | None = None,
        firestore_host: str | None = None,
        clock: Clock | None = None,
        retry_timeout: float = 2.0,
        bigquery: Any = None,
        **env: str,
    ) -> Stack:
        sim = ibsim_factory(
            scenario=scenario,
            state_dir=tmp_path / f"ibsim-{len(sessions)}",
            clock=clock or Clock(MARKET_OPEN, frozen=True),
            process_interval=0.02,
        )
        settings = stack_settings(emulator_env, pubsub, sim, **env)
        direct = emulator_env.firestore_client()
        store_client = (
            firestore_client_at(firestore_host, emulator_env.project) if firestore_host else direct
        )
        runs = RunStore(
            store_client,
            settings.runs_collection,
            settings.deployment,
            settings.lease_seconds,
            timedelta(days=1),
            retry_timeout=retry_timeout,
        )
        broker = BrokerSession(settings.ib_host, settings.ib_port, settings.ib_client_id, 3.0)
        broker.start()
        sessions.append(broker)
        assert broker.wait_ready(15), "the worker's IB session never became ready"
        config = TradingConfig(firestore_config_loader(direct, settings), 0)
        publisher = Publisher(settings.project_id, settings.results_topic)
        books = Books(direct, settings.trading_mode)
        recorder = _recorder(bigquery) if bigquery is not None else None
        pipeline = Pipeline(settings, runs, publisher, broker, config, recorder, books)
        client = create_app(pipeline).test_client()
        return Stack(client, pipeline, sim, pubsub, settings, direct)

    yield make
    for session in sessions:
        session.stop()


def _recorder(fake: Any) -> BigQueryRecorder:
    """The real recorder and client, talking to the loopback BigQuery fake."""
    from tests.bigquery_fixtures import BIGQUERY_PROJECT, client_for

    return BigQueryRecorder(BIGQUERY_PROJECT, "ib_trading", client_for(fake))


@pytest.fixture
def test_intent(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Register a test-only intent: ``test_intent(name, run, places_orders=False)``."""
    from pydantic import BaseModel, ConfigDict

    class Params(BaseModel):
        model_config = ConfigDict(extra="allow")

    def register(name: str, run: Callable[..., Any], places_orders: bool = False) -> None:
        spec = IntentSpec(name, Params, run, "test only", places_orders=places_orders)
        monkeypatch.setitem(REGISTRY, name, spec)

    return register
