"""Shared pytest wiring: the local-stack fixtures (emulators, ibsim, gunicorn worker) and the
loopback BigQuery fake."""

pytest_plugins = ["tests.stack_fixtures", "tests.bigquery_fixtures"]
