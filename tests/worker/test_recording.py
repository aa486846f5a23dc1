"""Rows for BigQuery (pure units; the real client against a fake server is in the e2e tests)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from google.api_core import exceptions as gexc

from worker import outcomes
from worker.errors import RecordFailed
from worker.recording import BigQueryRecorder, NoRecorder, recorder_for

DATA = {
    "idempotency_key": "k",
    "trading_mode": "paper",
    "account": "DU1",
    "timings": {
        "started_at": "2026-11-24T15:00:00+00:00",
        "finished_at": "2026-11-24T15:00:01+00:00",
    },
    "result": {
        "values": {"NetLiquidation": {"USD": "100"}, "CashBalance": {"BASE": "5", "EUR": "4"}}
    },
}


def stored(outcome: str = "succeeded", subject: str = "summary") -> dict:
    return outcomes.build(
        event_id="e1",
        outcome=outcome,
        source="/s",
        subject=subject,
        time=datetime(2026, 11, 24, 15, 0, 1, tzinfo=UTC),
        data=DATA,
    )


class FakeClient:
    """Stands in for bigquery.Client.insert_rows_json only."""

    def __init__(self, errors: list | None = None, raises: Exception | None = None) -> None:
        self.calls: list[tuple[str, list, list]] = []
        self.errors, self.raises = errors or [], raises

    def insert_rows_json(self, table: str, rows: list, row_ids: list, retry: object) -> list:
        if self.raises:
            raise self.raises
        self.calls.append((table, rows, row_ids))
        return self.errors


def test_outcome_and_account_value_rows() -> None:
    client = FakeClient()
    BigQueryRecorder("p", "ib_trading", client).record(stored())
    (t1, [row], ids1), (t2, values, ids2) = client.calls
    assert (t1, ids1) == ("p.ib_trading.intent_outcomes", ["e1"])
    assert row["event_id"] == "e1"
    assert row["outcome"] == "succeeded"
    assert json.loads(row["data"])["account"] == "DU1"
    assert t2 == "p.ib_trading.account_values"
    assert {(v["tag"], v["currency"], v["value"]) for v in values} == {
        ("NetLiquidation", "USD", "100"),
        ("CashBalance", "BASE", "5"),
        ("CashBalance", "EUR", "4"),
    }
    assert len(set(ids2)) == 3


def test_failed_outcomes_get_only_the_outcome_row() -> None:
    client = FakeClient()
    BigQueryRecorder("p", "d", client).record(stored("failed"))
    assert [c[0] for c in client.calls] == ["p.d.intent_outcomes"]


def test_transport_failure_is_retryable() -> None:
    recorder = BigQueryRecorder("p", "d", FakeClient(raises=gexc.ServiceUnavailable("down")))
    with pytest.raises(RecordFailed) as caught:
        recorder.record(stored())
    assert caught.value.retryable


def test_rejected_rows_are_logged_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    BigQueryRecorder("p", "d", FakeClient(errors=[{"index": 0, "errors": ["bad"]}])).record(
        stored("rejected")
    )
    assert "refused rows" in caplog.text


def test_no_dataset_means_no_recording() -> None:
    assert isinstance(recorder_for("p", ""), NoRecorder)
