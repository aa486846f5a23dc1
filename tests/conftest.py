"""Shared pytest wiring: the local-stack fixtures (emulators, ibsim, gunicorn worker)."""

pytest_plugins = ["tests.stack_fixtures"]
