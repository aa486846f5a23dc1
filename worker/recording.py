"""Outcome rows for BigQuery: every outcome, plus what an intent's result is worth keeping.

Rows are written before the outcome is published and carry insertIds derived from the outcome
id, so a replay after a failure writes them again without duplicates (BigQuery's best-effort
dedupe). Table names and schema files come from ``names.json``, which terraform uses too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_transient_error

from worker.errors import RecordFailed
from worker.names import names
from worker.outcomes import data_of

log = logging.getLogger(__name__)
Row = dict[str, Any]
_RETRY = Retry(predicate=if_transient_error, initial=0.2, maximum=2.0, timeout=8.0)


class Recorder(Protocol):
    def record(self, stored: dict[str, Any]) -> None: ...

    def insert(self, table: str, rows: list[Row], row_ids: list[str]) -> None: ...


class NoRecorder:
    """BigQuery recording switched off (``BQ_DATASET`` empty)."""

    def record(self, stored: dict[str, Any]) -> None:
        return None

    def insert(self, table: str, rows: list[Row], row_ids: list[str]) -> None:
        return None


def outcome_row(stored: dict[str, Any], data: dict[str, Any]) -> Row:
    timings = data.get("timings", {})
    return {
        "event_id": stored["id"],
        "idempotency_key": data.get("idempotency_key", ""),
        "intent": stored.get("subject", ""),
        "outcome": stored["outcome"],
        "trading_mode": data.get("trading_mode", ""),
        "account": data.get("account") or None,
        "started_at": timings.get("started_at"),
        "finished_at": timings.get("finished_at") or stored["time"],
        "data": stored["data_json"],
    }


def account_value_rows(stored: dict[str, Any], data: dict[str, Any]) -> list[Row]:
    """``summary``: one row per (tag, currency) of the account values it read."""
    values = (data.get("result") or {}).get("values") or {}
    return [
        {
            "snapshot_id": stored["id"],
            "account": data.get("account") or "",
            "trading_mode": data.get("trading_mode", ""),
            "taken_at": stored["time"],
            "tag": tag,
            "value": value,
            "currency": "" if currency == "-" else currency,
        }
        for tag, by_currency in values.items()
        for currency, value in by_currency.items()
    ]


def execution_rows(stored: dict[str, Any], data: dict[str, Any]) -> list[Row]:
    """``trade_reconciliation``: one row per execution (insertId = execId, see ROW_IDS)."""
    keep = ("exec_id", "time", "con_id", "symbol", "sec_type", "currency", "side", "shares")
    keep += ("price", "order_id", "perm_id", "order_ref", "commission", "commission_currency")
    return [
        {
            **{k: row.get(k) for k in keep},
            "realized_pnl": row.get("realized_pnl"),
            "event_id": stored["id"],
            "account": data.get("account") or "",
            "trading_mode": data.get("trading_mode", ""),
            "strategies": json.dumps(row.get("strategies") or {}),
        }
        for row in (data.get("result") or {}).get("executions") or []
    ]


def blotter_rows(stored: dict[str, Any], data: dict[str, Any]) -> list[Row]:
    """``trade_reconciliation``: the day's position and P&L per strategy and instrument."""
    return [
        {
            **row,
            "snapshot_id": stored["id"],
            "taken_at": stored["time"],
            "account": data.get("account") or "",
            "trading_mode": data.get("trading_mode", ""),
        }
        for row in (data.get("result") or {}).get("blotter") or []
    ]


Builder = Callable[[dict[str, Any], dict[str, Any]], list[Row]]
# intent -> [(table, row builder)] for succeeded outcomes worth more than the outcome row.
RESULT_ROWS: dict[str, list[tuple[str, Builder]]] = {
    "summary": [("account_values", account_value_rows)],
    "trade_reconciliation": [("executions", execution_rows), ("blotter", blotter_rows)],
}
# table -> the row field that is its insertId (default: outcome id and row number)
ROW_IDS = {"executions": "exec_id"}


class BigQueryRecorder:
    """Streams rows with insertIds; transient failures are retryable, bad rows are logged."""

    def __init__(self, project: str, dataset: str, client: Any) -> None:
        self._client = client
        self._table = {t: f"{project}.{dataset}.{t}" for t in names()["bigquery"]["tables"]}

    def record(self, stored: dict[str, Any]) -> None:
        data = data_of(stored)
        self.insert("intent_outcomes", [outcome_row(stored, data)], [stored["id"]])
        if stored["outcome"] != "succeeded":
            return
        for table, build in RESULT_ROWS.get(stored.get("subject", ""), []):
            rows = build(stored, data)
            field = ROW_IDS.get(table)
            ids = [str(r[field]) if field else f"{stored['id']}:{i}" for i, r in enumerate(rows)]
            self.insert(table, rows, ids)

    def insert(self, table: str, rows: list[Row], row_ids: list[str]) -> None:
        """Stream ``rows`` with insertIds (intents writing data of their own use this too)."""
        if not rows:
            return
        try:
            errors = self._client.insert_rows_json(
                self._table[table], rows, row_ids=row_ids, retry=_RETRY
            )
        except (gexc.GoogleAPIError, OSError) as exc:
            raise RecordFailed(
                f"BigQuery insert into {table} failed: {type(exc).__name__}"
            ) from exc
        if errors:
            # A schema mismatch is a bug of ours; retrying cannot fix it, so keep the outcome.
            log.error("BigQuery refused rows for %s: %s", table, json.dumps(errors)[:1000])


def recorder_for(project: str, dataset: str, endpoint: str = "") -> Recorder:
    """The recorder the settings ask for (an api endpoint points at a local fake)."""
    if not dataset:
        return NoRecorder()
    from google.cloud import bigquery

    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        client = bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
    else:
        client = bigquery.Client(project=project)
    return BigQueryRecorder(project, dataset, client)
