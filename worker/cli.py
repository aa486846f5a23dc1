"""``ib-worker``: small operator commands (schemas, configuration check)."""

from __future__ import annotations

import argparse
import json
import sys

from worker.config import load_settings
from worker.intents import json_schemas


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ib-worker`` command."""
    parser = argparse.ArgumentParser(prog="ib-worker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("schema", help="print the JSON Schema of every intent's params")
    sub.add_parser("check-config", help="validate the environment and print the settings")
    lease = sub.add_parser("login-lease", help="this deployment's IB login lease (start-gateway)")
    lease.add_argument("action", choices=["acquire", "hold", "release"])
    lease.add_argument("--wait", type=float, default=None, help="seconds (default: no limit)")
    args = parser.parse_args(argv)
    if args.command == "login-lease":
        from worker import login_lease  # Firestore is imported only for this command

        return login_lease.command(args.action, args.wait)
    if args.command == "schema":
        print(json.dumps(json_schemas(), indent=2))
        return 0
    settings = load_settings()  # exits with a readable message when invalid
    print(json.dumps(settings.model_dump(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
