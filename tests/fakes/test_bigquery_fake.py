"""The real google-cloud-bigquery client against the BigQuery fake (tests/fakes/bigquery.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from tests.bigquery_fixtures import BIGQUERY_PROJECT
from tests.fakes.bigquery import FakeBigQuery
from worker.names import NAMES_FILE, names

DATASET = names()["bigquery"]["dataset"]
OUTCOMES = f"{BIGQUERY_PROJECT}.{DATASET}.intent_outcomes"
TYPES = f"{BIGQUERY_PROJECT}.scratch.types"
STOPPED = {"reason": "stopped", "location": "", "debugInfo": "", "message": ""}


def outcome(event_id: str = "e1", **extra: Any) -> dict[str, Any]:
    """A valid intent_outcomes row."""
    row = {
        "event_id": event_id,
        "idempotency_key": "k1",
        "intent": "summary",
        "outcome": "succeeded",
        "trading_mode": "paper",
        "finished_at": "2026-01-05T15:30:00Z",
        "data": json.dumps({"ok": True}),
    }
    return row | extra


@pytest.fixture
def types_table(bigquery_client: bigquery.Client) -> str:
    """scratch.types: one column of every type the fake checks, created through the client."""
    bigquery_client.create_dataset(f"{BIGQUERY_PROJECT}.scratch", exists_ok=True)
    schema = [
        bigquery.SchemaField("s", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("i", "INTEGER"),
        bigquery.SchemaField("f", "FLOAT"),
        bigquery.SchemaField("b", "BOOLEAN"),
        bigquery.SchemaField("t", "TIMESTAMP"),
        bigquery.SchemaField("j", "JSON"),
        bigquery.SchemaField("r", "INTEGER", mode="REPEATED"),
    ]
    bigquery_client.create_table(bigquery.Table(TYPES, schema=schema), exists_ok=True)
    return TYPES


def test_names_json_tables_match_schema_files(bigquery_client: bigquery.Client) -> None:
    for name, spec in names()["bigquery"]["tables"].items():
        table = bigquery_client.get_table(f"{BIGQUERY_PROJECT}.{DATASET}.{name}")
        expected = json.loads((NAMES_FILE.parent / spec["schema"]).read_text(encoding="utf-8"))
        assert [f.to_api_repr() for f in table.schema] == [
            bigquery.SchemaField.from_api_repr(f).to_api_repr() for f in expected
        ]
        assert table.time_partitioning.field == spec["partition_field"]


def test_create_is_idempotent_with_exists_ok(bigquery_client: bigquery.Client) -> None:
    dataset = f"{BIGQUERY_PROJECT}.made"
    table = bigquery.Table(f"{dataset}.t", schema=[bigquery.SchemaField("ts", "TIMESTAMP")])
    table.time_partitioning = bigquery.TimePartitioning(field="ts")
    for _ in range(2):
        bigquery_client.create_dataset(dataset, exists_ok=True)
        bigquery_client.create_table(table, exists_ok=True)

    assert bigquery_client.get_table(f"{dataset}.t").time_partitioning.field == "ts"
    with pytest.raises(gexc.Conflict):
        bigquery_client.create_table(table)
    with pytest.raises(gexc.NotFound):
        bigquery_client.get_table(f"{dataset}.missing")


def test_insert_dedupes_by_insert_id(
    bigquery_client: bigquery.Client, bigquery_fake: FakeBigQuery
) -> None:
    first = bigquery_client.insert_rows_json(
        OUTCOMES, [outcome("e1"), outcome("e2")], row_ids=["e1", "e2"]
    )
    again = bigquery_client.insert_rows_json(
        OUTCOMES, [outcome("e2"), outcome("e3")], row_ids=["e2", "e3"]
    )

    assert first == again == []
    stored = bigquery_fake.rows(DATASET, "intent_outcomes")
    assert [r["event_id"] for r in stored] == ["e1", "e2", "e3"]
    assert stored[0]["finished_at"] == datetime(2026, 1, 5, 15, 30, tzinfo=UTC)
    assert stored[0]["data"] == {"ok": True}
    assert stored[0]["account"] is None


@pytest.mark.parametrize(
    ("row", "location", "message"),
    [
        (outcome(extra_field=1), "extra_field", "no such field: extra_field."),
        ({k: v for k, v in outcome().items() if k != "intent"}, "intent", "Missing required"),
        (outcome(intent=None), "intent", "Missing required field: intent."),
        (outcome(intent=7), "intent", "Cannot convert value to string"),
        (outcome(finished_at="yesterday"), "finished_at", "to timestamp"),
        (outcome(data="{not json"), "data", "to JSON"),
        (outcome(account=["U1"]), "account", "Array specified for non-repeated field"),
    ],
)
def test_schema_violation_rejects_the_request(
    bigquery_client: bigquery.Client,
    bigquery_fake: FakeBigQuery,
    row: dict[str, Any],
    location: str,
    message: str,
) -> None:
    errors = bigquery_client.insert_rows_json(OUTCOMES, [outcome("ok"), row], row_ids=["a", "b"])

    assert errors[0] == {"index": 0, "errors": [STOPPED]}
    assert errors[1]["index"] == 1
    [error] = errors[1]["errors"]
    assert (error["reason"], error["location"]) == ("invalid", location)
    assert message in error["message"]
    assert bigquery_fake.rows(DATASET, "intent_outcomes") == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("i", "1.5"), ("i", True), ("f", "abc"), ("b", "yes"), ("b", 1), ("t", [1]), ("r", 3)],
)
def test_type_violations(
    bigquery_client: bigquery.Client, types_table: str, field: str, value: Any
) -> None:
    [error] = bigquery_client.insert_rows_json(types_table, [{"s": "x", field: value}])

    assert error["errors"][0]["location"] == field
    assert error["errors"][0]["reason"] == "invalid"


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("i", "42", 42),
        ("f", 1, 1.0),
        ("b", "true", True),
        ("t", "2026-01-05T10:30:00-05:00", datetime(2026, 1, 5, 15, 30, tzinfo=UTC)),
        ("t", "2026-01-05 15:30:00", datetime(2026, 1, 5, 15, 30, tzinfo=UTC)),
        ("t", 1767627000, datetime(2026, 1, 5, 15, 30, tzinfo=UTC)),
        ("t", "1767627000.5", datetime(2026, 1, 5, 15, 30, 0, 500000, tzinfo=UTC)),
        ("j", {"a": [1]}, {"a": [1]}),
        ("j", "[1, 2]", [1, 2]),
        ("r", ["1", 2], [1, 2]),
        ("r", None, []),
    ],
)
def test_accepted_spellings(
    bigquery_client: bigquery.Client,
    bigquery_fake: FakeBigQuery,
    types_table: str,
    field: str,
    value: Any,
    stored: Any,
) -> None:
    assert bigquery_client.insert_rows_json(types_table, [{"s": "x", field: value}]) == []
    assert bigquery_fake.rows("scratch", "types")[0][field] == stored


def test_skip_invalid_rows_keeps_the_good_ones(
    bigquery_client: bigquery.Client, bigquery_fake: FakeBigQuery
) -> None:
    rows = [outcome("e1"), outcome("e2", outcome="x", finished_at=None)]
    errors = bigquery_client.insert_rows_json(OUTCOMES, rows, skip_invalid_rows=True)

    assert [e["index"] for e in errors] == [1]
    assert [r["event_id"] for r in bigquery_fake.rows(DATASET, "intent_outcomes")] == ["e1"]


def test_transient_503_is_retried_by_the_default_retry(
    bigquery_client: bigquery.Client, bigquery_fake: FakeBigQuery
) -> None:
    bigquery_fake.fail_next(1, status=503)

    assert bigquery_client.insert_rows_json(OUTCOMES, [outcome()], row_ids=["e1"]) == []
    inserts = [r for r in bigquery_fake.requests if r[1].endswith("/insertAll")]
    assert len(inserts) == 2
    assert len(bigquery_fake.rows(DATASET, "intent_outcomes")) == 1


def test_permanent_error_reaches_the_caller(
    bigquery_client: bigquery.Client, bigquery_fake: FakeBigQuery
) -> None:
    bigquery_fake.fail_next(1, status=400)

    with pytest.raises(gexc.BadRequest, match="Injected failure 400"):
        bigquery_client.insert_rows_json(OUTCOMES, [outcome()], row_ids=["e1"])
    assert bigquery_fake.rows(DATASET, "intent_outcomes") == []


def test_query_reads_rows_and_counts(bigquery_client: bigquery.Client) -> None:
    rows = [outcome("e1"), outcome("e2", account="U1", data=None)]
    assert bigquery_client.insert_rows_json(OUTCOMES, rows, row_ids=["e1", "e2"]) == []

    read = list(bigquery_client.query(f"SELECT * FROM `{OUTCOMES}`").result())
    [(count,)] = bigquery_client.query(f"SELECT COUNT(*) FROM `{OUTCOMES}`").result()
    [(again,)] = bigquery_client.query_and_wait(f"select count(*) from `{DATASET}.intent_outcomes`")

    assert [(r["event_id"], r["account"], r["data"]) for r in read] == [
        ("e1", None, {"ok": True}),
        ("e2", "U1", None),
    ]
    assert read[0]["finished_at"] == datetime(2026, 1, 5, 15, 30, tzinfo=UTC)
    assert count == again == 2


def test_unsupported_query_is_a_bad_request(bigquery_client: bigquery.Client) -> None:
    with pytest.raises(gexc.BadRequest, match="fake runs only"):
        bigquery_client.query(f"SELECT event_id FROM `{OUTCOMES}` WHERE 1 = 1").result()
