"""Pytest plugin: the BigQuery fake (``tests/fakes/bigquery.py``) on loopback, and a client for it.

Register with ``pytest_plugins = ["tests.bigquery_fixtures"]`` (root conftest) or ``-p
tests.bigquery_fixtures``. Fixtures:

- ``bigquery_server`` (session): one FakeBigQuery serving on a free 127.0.0.1 port.
- ``bigquery_fake``: that server reset for this test, with project ``BIGQUERY_PROJECT`` holding the
  dataset and tables of worker/names.json (schemas from worker/schemas/bigquery, as terraform).
  Point the worker at it with ``BIGQUERY_API_ENDPOINT=bigquery_fake.endpoint``.
- ``bigquery_client``: the real google-cloud-bigquery client talking to the fake.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from tests.fakes.bigquery import FakeBigQuery

BIGQUERY_PROJECT = "test-project"


def client_for(fake: FakeBigQuery, project: str = BIGQUERY_PROJECT) -> bigquery.Client:
    """A real BigQuery client whose requests go to ``fake`` (no credentials needed)."""
    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": fake.endpoint},
    )


@pytest.fixture(scope="session")
def bigquery_server() -> Iterator[FakeBigQuery]:
    """The fake for the whole session; ``bigquery_fake`` resets it per test."""
    fake = FakeBigQuery().serve()
    yield fake
    fake.close()


@pytest.fixture
def bigquery_fake(bigquery_server: FakeBigQuery) -> FakeBigQuery:
    """The fake, emptied, with names.json's dataset and tables in ``BIGQUERY_PROJECT``."""
    bigquery_server.reset()
    bigquery_server.create_tables(BIGQUERY_PROJECT)
    return bigquery_server


@pytest.fixture
def bigquery_client(bigquery_fake: FakeBigQuery) -> Iterator[bigquery.Client]:
    """A client for ``bigquery_fake``, closed after the test."""
    client = client_for(bigquery_fake)
    yield client
    client.close()
