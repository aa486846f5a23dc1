"""Local development stack: the official emulators, ibsim and the worker under gunicorn.

Run ``python -m worker.devstack demo`` for the end-to-end demo, ``python -m worker.devstack stack``
to keep a stack running until Ctrl-C. Tests use the same parts through tests/stack_fixtures.py.
"""
