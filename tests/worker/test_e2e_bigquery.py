"""Outcome rows reach BigQuery (the real client against the loopback fake) exactly once, even
when BigQuery fails and Pub/Sub redelivers."""

from __future__ import annotations

import pytest

from worker.devstack.pubsub_setup import PushPolicy

pytestmark = pytest.mark.emulators


@pytest.fixture
def stack(worker_server, pubsub, ibsim_server, clean_firestore, bigquery_fake, emulators):
    bigquery_fake.create_tables(emulators.project)
    worker = worker_server(
        BQ_DATASET="ib_trading", BIGQUERY_API_ENDPOINT=bigquery_fake.endpoint, wait_ready=True
    )
    pubsub.setup(worker.url + "/", PushPolicy(min_backoff_s=0.5, max_backoff_s=2.0))
    return worker


def test_summary_writes_its_rows(stack, pubsub, bigquery_fake, emulators) -> None:
    pubsub.publish_intent("summary", {}, {"idempotency_key": "bq-1"})
    [outcome] = pubsub.pull_outcomes(timeout=30, expected=1)
    [row] = bigquery_fake.rows("ib_trading", "intent_outcomes", project=emulators.project)
    assert row["event_id"] == outcome.id
    assert row["outcome"] == "succeeded"
    values = bigquery_fake.rows("ib_trading", "account_values", project=emulators.project)
    assert {"NetLiquidation", "TotalCashValue"} <= {v["tag"] for v in values}
    assert {v["snapshot_id"] for v in values} == {outcome.id}


def test_bigquery_outage_is_retried_and_rows_land_once(
    stack, pubsub, bigquery_fake, emulators
) -> None:
    bigquery_fake.fail_next(12, status=503)  # outlasts one delivery's retries (8 s)
    pubsub.publish_intent("summary", {}, {"idempotency_key": "bq-2"})
    outcomes = pubsub.pull_outcomes(timeout=60, expected=1)
    outcomes += pubsub.pull_outcomes(timeout=2, expected=1)
    assert [o.kind for o in outcomes] == ["succeeded"]
    rows = bigquery_fake.rows("ib_trading", "intent_outcomes", project=emulators.project)
    assert [r["event_id"] for r in rows] == [outcomes[0].id]
    inserts = [path for method, path in bigquery_fake.requests if path.endswith("/insertAll")]
    assert len(inserts) > 12, "the first delivery should have given up and been redelivered"
