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
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(json_schemas(), indent=2))
        return 0
    settings = load_settings()  # exits with a readable message when invalid
    print(json.dumps(settings.model_dump(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
