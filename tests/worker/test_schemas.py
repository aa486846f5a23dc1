"""docs/schemas/ matches the code (regenerate with ``make schemas``)."""

from __future__ import annotations

from worker.intents import REGISTRY
from worker.intents.schemas import DEFAULT_DIR, documents, render


def test_committed_schemas_match_the_code() -> None:
    expected = documents()
    assert {f"intent.{name}.params.json" for name in REGISTRY} <= set(expected)
    assert {f"intent.{name}.result.json" for name in REGISTRY} <= set(expected)
    on_disk = {p.name for p in DEFAULT_DIR.glob("*.json")}
    assert on_disk == set(expected), "run `make schemas`"
    for name, schema in expected.items():
        assert (DEFAULT_DIR / name).read_text(encoding="utf-8") == render(schema), name
