"""A loopback fake of the few BigQuery REST v2 calls the real ``google-cloud-bigquery`` makes.

BigQuery has no usable emulator here, so tests point the real client at this server
(``client_options={"api_endpoint": fake.endpoint}``, ``AnonymousCredentials``). Implemented:
datasets and tables get/insert; ``tabledata.insertAll``, checking every row against the table
schema (see ``bigquery_rows``) and dropping rows whose ``insertId`` was accepted before, like
BigQuery's best-effort dedupe (there about a minute, here until ``reset()``); and, for
``SELECT * FROM `p.d.t``` and ``SELECT COUNT(*) FROM `p.d.t``` only, ``jobs.insert`` +
``jobs.getQueryResults`` (``client.query().result()``) and ``jobs.query`` (``query_and_wait``).

Concurrency: requests run on the server's threads; one lock guards all state.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.bigquery_rows import CONVERTERS, Column, Row, cell, check_row
from worker.names import NAMES_FILE, names

_API_PREFIX = "/bigquery/v2"
_QUERY = re.compile(
    r"\s*SELECT\s+(?P<what>\*|COUNT\(\s*\*\s*\))\s+FROM\s+`?(?P<table>[\w.-]+)`?\s*;?\s*",
    re.IGNORECASE,
)
# HTTP status -> (errors[0].reason, error.status) as the real API sends them; the client's
# default retry decides on the reason (backendError, rateLimitExceeded... are retried).
_ERROR_KINDS = {
    400: ("invalid", "INVALID_ARGUMENT"),
    404: ("notFound", "NOT_FOUND"),
    409: ("duplicate", "ALREADY_EXISTS"),
    429: ("rateLimitExceeded", "RESOURCE_EXHAUSTED"),
    500: ("internalError", "INTERNAL"),
    502: ("badGateway", "UNAVAILABLE"),
    503: ("backendError", "UNAVAILABLE"),
}


class ApiError(Exception):
    """An error answer: HTTP status plus the message BigQuery would send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def body(self) -> dict[str, Any]:
        """The JSON error body in the Google API shape the client parses."""
        reason, status = _ERROR_KINDS.get(self.status, ("invalid", "UNKNOWN"))
        detail = {"reason": reason, "message": str(self), "domain": "global"}
        error = {"code": self.status, "message": str(self), "status": status, "errors": [detail]}
        return {"error": error}


# ---- state ---------------------------------------------------------------------------------


@dataclass
class _Table:
    resource: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    insert_ids: set[str] = field(default_factory=set)

    @property
    def schema(self) -> list[Column]:
        return self.resource.get("schema", {}).get("fields", [])

    def add(self, row: Row, insert_id: str | None) -> None:
        """Store a checked row unless its insertId was seen (BigQuery's best-effort dedupe)."""
        if insert_id and insert_id in self.insert_ids:
            return
        if insert_id:
            self.insert_ids.add(insert_id)
        self.rows.append(row)


def _stop_all(errors: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """Without skipInvalidRows one bad row rejects the request; the others come back "stopped"."""
    stopped = [{"reason": "stopped", "location": "", "debugInfo": "", "message": ""}]
    by_index = {e["index"]: e["errors"] for e in errors}
    return [{"index": i, "errors": by_index.get(i, stopped)} for i in range(count)]


class FakeBigQuery:
    """The fake's state and its REST handlers; ``serve()`` puts it on a loopback port.

    ``requests`` lists every (method, path) received since the last ``reset()``, so a test can
    see e.g. that the client retried an injected failure.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._job_ids = itertools.count(1)
        self.reset()

    # -- test-facing API

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, for ``client_options={"api_endpoint": ...}``."""
        assert self._server is not None, "serve() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        """Forget every dataset, table, row, seen insertId, job and pending injected failure."""
        with self._lock:
            self._datasets: dict[tuple[str, str], dict[str, Any]] = {}
            self._tables: dict[tuple[str, str, str], _Table] = {}
            self._jobs: dict[tuple[str, str], dict[str, Any]] = {}
            self._failures: list[int] = []
            self.requests: list[tuple[str, str]] = []

    def rows(self, dataset: str, table: str, project: str | None = None) -> list[Row]:
        """Stored rows, typed as a query returns them (TIMESTAMP -> aware datetime, JSON parsed)."""
        with self._lock:
            found = [
                t
                for (p, d, n), t in self._tables.items()
                if project in (None, p) and (d, n) == (dataset, table)
            ]
            if len(found) != 1:
                raise KeyError(f"{len(found)} tables named {dataset}.{table}")
            return copy.deepcopy(found[0].rows)

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` requests, whatever they are, with ``status``."""
        with self._lock:
            self._failures.extend([status] * n)

    def create_tables(self, project: str) -> list[str]:
        """Create the dataset and tables of names.json's bigquery section, as terraform does."""
        section = names()["bigquery"]
        dataset = section["dataset"]
        # Tolerate what exists already, like terraform's second apply.
        with contextlib.suppress(ApiError):
            self._insert_dataset((project,), {}, {"datasetReference": {"datasetId": dataset}})
        created = []
        for table, spec in section["tables"].items():
            schema = json.loads((NAMES_FILE.parent / spec["schema"]).read_text(encoding="utf-8"))
            resource = {
                "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
                "schema": {"fields": schema},
                "timePartitioning": {"type": "DAY", "field": spec["partition_field"]},
            }
            with contextlib.suppress(ApiError):
                self._insert_table((project, dataset), {}, resource)
            created.append(f"{project}.{dataset}.{table}")
        return created

    # -- serving

    def serve(self) -> FakeBigQuery:
        """Start serving on a free loopback port in a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        # A short poll interval keeps close() (which waits for one poll) from costing 0.5 s.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)
        threading.Thread(target=serve, name="bigquery-fake", daemon=True).start()
        return self

    def close(self) -> None:
        """Stop serving and close the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def dispatch(self, method: str, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One request -> (status, JSON body)."""
        parts = urlsplit(url)
        path = parts.path.removeprefix(_API_PREFIX)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append((method, path))
            status = self._failures.pop(0) if self._failures else None
        try:
            if status is not None:
                raise ApiError(status, f"Injected failure {status}")
            for verb, pattern, handler in _ROUTES:
                match = pattern.fullmatch(path)
                if verb == method and match:
                    return 200, handler(self, match.groups(), params, body)
            raise ApiError(404, f"The fake does not implement {method} {path}")
        except ApiError as exc:
            return exc.status, exc.body()

    # -- datasets and tables

    def _get_dataset(self, ids: tuple[str, ...], _p: Any, _b: Any) -> dict[str, Any]:
        with self._lock:
            if ids not in self._datasets:
                raise ApiError(404, f"Not found: Dataset {ids[0]}:{ids[1]}")
            return self._datasets[ids]

    def _insert_dataset(self, ids: tuple[str, ...], _p: Any, body: dict[str, Any]) -> Any:
        project, dataset = ids[0], body["datasetReference"]["datasetId"]
        resource = {
            **body,
            "kind": "bigquery#dataset",
            "id": f"{project}:{dataset}",
            "datasetReference": {"projectId": project, "datasetId": dataset},
            "location": body.get("location") or "US",
        }
        with self._lock:
            if (project, dataset) in self._datasets:
                raise ApiError(409, f"Already Exists: Dataset {project}:{dataset}")
            self._datasets[(project, dataset)] = resource
        return resource

    def _table(self, project: str, dataset: str, table: str) -> _Table:
        found = self._tables.get((project, dataset, table))
        if found is None:
            raise ApiError(404, f"Not found: Table {project}:{dataset}.{table}")
        return found

    def _get_table(self, ids: tuple[str, ...], _p: Any, _b: Any) -> dict[str, Any]:
        with self._lock:
            return self._table(*ids).resource

    def _insert_table(self, ids: tuple[str, ...], _p: Any, body: dict[str, Any]) -> Any:
        project, dataset = ids
        table = body["tableReference"]["tableId"]
        for column in body.get("schema", {}).get("fields", []):
            if column["type"].upper() not in CONVERTERS:
                raise ApiError(400, f"Field {column['name']}: type {column['type']} unsupported")
        resource = {
            **body,
            "kind": "bigquery#table",
            "type": "TABLE",
            "id": f"{project}:{dataset}.{table}",
            "location": "US",
            "creationTime": str(int(datetime.now(UTC).timestamp() * 1000)),
        }
        with self._lock:
            if (project, dataset) not in self._datasets:
                raise ApiError(404, f"Not found: Dataset {project}:{dataset}")
            if (project, dataset, table) in self._tables:
                raise ApiError(409, f"Already Exists: Table {project}:{dataset}.{table}")
            self._tables[(project, dataset, table)] = _Table(resource)
        return resource

    # -- tabledata.insertAll

    def _insert_all(self, ids: tuple[str, ...], _p: Any, body: dict[str, Any]) -> Any:
        entries = body.get("rows", [])
        ignore_unknown = body.get("ignoreUnknownValues", False)
        with self._lock:
            table = self._table(*ids)
            checked = [check_row(table.schema, e.get("json"), ignore_unknown) for e in entries]
            errors = [{"index": i, "errors": e} for i, (_, e) in enumerate(checked) if e]
            if errors and not body.get("skipInvalidRows", False):
                return {"kind": _INSERT_ALL_KIND, "insertErrors": _stop_all(errors, len(entries))}
            for entry, (row, row_errors) in zip(entries, checked, strict=True):
                if not row_errors:
                    table.add(row, entry.get("insertId"))
        return {"kind": _INSERT_ALL_KIND, **({"insertErrors": errors} if errors else {})}

    # -- queries

    def _run_query(self, project: str, sql: str) -> tuple[list[Column], list[Row]]:
        match = _QUERY.fullmatch(sql)
        if not match:
            raise ApiError(400, f"The fake runs only SELECT * / COUNT(*) FROM `p.d.t`: {sql!r}")
        parts = match["table"].split(".")
        table = self._table(*([project] if len(parts) == 2 else []), *parts)
        if match["what"] == "*":
            return table.schema, copy.deepcopy(table.rows)
        return [{"name": "f0_", "type": "INTEGER", "mode": "NULLABLE"}], [{"f0_": len(table.rows)}]

    def _insert_job(self, ids: tuple[str, ...], _p: Any, body: dict[str, Any]) -> Any:
        project = ids[0]
        job_id = body.get("jobReference", {}).get("jobId") or f"job_{next(self._job_ids)}"
        ref = {"projectId": project, "location": "US", "jobId": job_id}
        sql = body.get("configuration", {}).get("query", {}).get("query")
        if sql is None:
            raise ApiError(400, "The fake runs query jobs only")
        with self._lock:
            schema, rows = self._run_query(project, sql)
            resource = {
                **body,
                "kind": "bigquery#job",
                "id": f"{project}:US.{job_id}",
                "jobReference": ref,
                "status": {"state": "DONE"},
            }
            self._jobs[(project, job_id)] = {"resource": resource, "schema": schema, "rows": rows}
        return resource

    def _job(self, project: str, job_id: str) -> dict[str, Any]:
        with self._lock:
            if (project, job_id) not in self._jobs:
                raise ApiError(404, f"Not found: Job {project}:{job_id}")
            return self._jobs[(project, job_id)]

    def _get_query_results(self, ids: tuple[str, ...], params: dict[str, str], _b: Any) -> Any:
        job = self._job(*ids)
        return _results_page(job["resource"]["jobReference"], job["schema"], job["rows"], params)

    def _query(self, ids: tuple[str, ...], _p: Any, body: dict[str, Any]) -> Any:
        job = self._insert_job(ids, {}, {"configuration": {"query": {"query": body["query"]}}})
        params = {"maxResults": str(body["maxResults"])} if "maxResults" in body else {}
        return self._get_query_results((ids[0], job["jobReference"]["jobId"]), params, None)


def _results_page(
    ref: dict[str, Any], schema: list[Column], rows: list[Row], params: dict[str, str]
) -> dict[str, Any]:
    """One page of jobs.getQueryResults; ``pageToken`` is simply the next row's index."""
    start = int(params.get("pageToken") or params.get("startIndex") or 0)
    end = start + int(params.get("maxResults", len(rows)))
    page = [{"f": [{"v": cell(c, r.get(c["name"]))} for c in schema]} for r in rows[start:end]]
    result = {
        "kind": "bigquery#getQueryResultsResponse",
        "jobReference": ref,
        "jobComplete": True,
        "schema": {"fields": schema},
        "totalRows": str(len(rows)),
        "rows": page,
    }
    if end < len(rows):
        result["pageToken"] = str(end)
    return result


_INSERT_ALL_KIND = "bigquery#tableDataInsertAllResponse"
_P = r"/projects/([^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
    (verb, re.compile(pattern), handler)
    for verb, pattern, handler in [
        ("GET", _P + r"/datasets/([^/]+)", FakeBigQuery._get_dataset),
        ("POST", _P + r"/datasets", FakeBigQuery._insert_dataset),
        ("GET", _P + r"/datasets/([^/]+)/tables/([^/]+)", FakeBigQuery._get_table),
        ("POST", _P + r"/datasets/([^/]+)/tables", FakeBigQuery._insert_table),
        ("POST", _P + r"/datasets/([^/]+)/tables/([^/]+)/insertAll", FakeBigQuery._insert_all),
        ("POST", _P + r"/jobs", FakeBigQuery._insert_job),
        ("GET", _P + r"/queries/([^/]+)", FakeBigQuery._get_query_results),
        ("POST", _P + r"/queries", FakeBigQuery._query),
    ]
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's requests session expects
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK costs 40 ms.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw.strip() else {}
        status, answer = self.server.fake.dispatch(self.command, self.path, body)  # type: ignore[attr-defined]
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is for the tests."""
