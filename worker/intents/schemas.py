"""``python -m worker.intents.schemas [DIR]`` (``make schemas``): the JSON Schemas of every
intent's params and result and every strategy's config, written to ``docs/schemas/``. A test
fails when the committed files drift from the code."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from worker import strategies
from worker.intents import json_schemas
from worker.intents.results import RESULTS

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def documents() -> dict[str, Any]:
    """File name -> schema."""
    docs = {f"intent.{name}.params.json": s for name, s in json_schemas().items()}
    docs.update({f"intent.{n}.result.json": m.model_json_schema() for n, m in RESULTS.items()})
    docs.update({f"strategy.{sid}.config.json": s for sid, s in strategies.json_schemas().items()})
    return docs


def render(schema: Any) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in sorted(documents().items()):
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR
    for path in write(target):
        print(path)
