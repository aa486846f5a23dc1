"""Every resource and block in terraform/ against the google provider's schema, offline.

`terraform validate` needs the provider plugin, which cannot be downloaded here. Its schema can:
tests/infra/extract_provider_schema.py took it from the provider's npm bindings into
tests/infra/data/google_provider_schema.json, for the types terraform/ uses. These tests walk the
HCL as written and report unknown arguments and blocks, missing required ones, deprecated fields
and references to attributes a resource does not have; the last tests inject each kind of mistake
and check it is reported.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest

from .tfload import TERRAFORM, TerraformDir

SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "google_provider_schema.json"
META = {"count", "for_each", "depends_on", "lifecycle", "provider", "provisioner", "connection"}
MARKERS = {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}
REFERENCE = re.compile(r"(?<![\w.])(data\.)?(google_\w+)\.(\w+)(?:\[[^\]]*\])?\.(\w+)")


@dataclass(frozen=True)
class Item:
    """One resource or data block as written: where, what, and its raw python-hcl2 body."""

    file: str
    kind: str  # "resources" or "data"
    type: str
    name: str
    body: dict[str, Any]

    @property
    def provider(self) -> str:
        return str(self.body.get("provider", "google")).strip("${}")

    @property
    def where(self) -> str:
        prefix = "data." if self.kind == "data" else ""
        return f"{self.file}: {prefix}{self.type}.{self.name}"


def _unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def load_items() -> list[Item]:
    """Every resource and data block under terraform/, as python-hcl2 parses it."""
    items = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        for kind, entries in hcl2.loads(path.read_text()).items():
            if kind not in ("resource", "data"):
                continue
            for entry in entries:
                for tf_type, by_name in entry.items():
                    for name, body in by_name.items():
                        items.append(
                            Item(
                                str(path.relative_to(TERRAFORM)),
                                "resources" if kind == "resource" else "data",
                                _unquote(tf_type),
                                _unquote(name),
                                body,
                            )
                        )
    return items


def _is_block(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def _dynamic_blocks(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """dynamic "name" { content { ... } } blocks, as name -> their content bodies."""
    found: dict[str, list[dict[str, Any]]] = {}
    for dynamic in body.get("dynamic", []):
        for label, spec in dynamic.items():
            if label in MARKERS:
                continue
            found.setdefault(_unquote(label), []).extend(spec.get("content", []))
    return found


def check_body(body: dict[str, Any], schema: dict[str, Any], where: str, top: bool) -> list[str]:
    """Mistakes in one body against its schema (recursively for nested blocks)."""
    problems = []
    attributes, blocks = schema["attributes"], schema["blocks"]
    dynamic = _dynamic_blocks(body)
    for key, value in body.items():
        if key in MARKERS or key == "dynamic" or (top and key in META):
            continue
        if key in attributes:
            if _is_block(value):
                problems.append(f"{where}: {key} is an argument, written as a block")
            if attributes[key].get("deprecated"):
                problems.append(f"{where}: {key} is deprecated")
        elif key in blocks:
            if not _is_block(value):
                problems.append(f"{where}: {key} is a block, written as an argument")
                continue
            problems += _check_blocks(key, value, blocks[key], where)
        else:
            problems.append(f"{where}: unknown argument or block {key!r}")
    for key, contents in dynamic.items():
        if key not in blocks:
            problems.append(f"{where}: unknown dynamic block {key!r}")
            continue
        problems += _check_blocks(key, contents, blocks[key], where, dynamic=True)
    problems += _missing(body, attributes, blocks, dynamic, where)
    return problems


def _check_blocks(
    key: str, values: list[dict[str, Any]], spec: dict[str, Any], where: str, dynamic: bool = False
) -> list[str]:
    problems = []
    if spec.get("deprecated"):
        problems.append(f"{where}: block {key} is deprecated")
    if spec.get("max_one") and len(values) > 1 and not dynamic:
        problems.append(f"{where}: block {key} may appear at most once")
    for value in values:
        problems += check_body(value, spec, f"{where}.{key}", top=False)
    return problems


def _missing(
    body: dict[str, Any],
    attributes: dict[str, Any],
    blocks: dict[str, Any],
    dynamic: dict[str, Any],
    where: str,
) -> list[str]:
    problems = [
        f"{where}: required argument {name} is missing"
        for name, spec in attributes.items()
        if spec["required"] and name not in body
    ]
    problems += [
        f"{where}: required block {name} is missing"
        for name, spec in blocks.items()
        if spec["required"] and name not in body and name not in dynamic
    ]
    return problems


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in MARKERS:
                yield from _strings(item)


def check_references(item: Item, document: dict[str, Any], declared: set[tuple]) -> list[str]:
    """References to google_* resources in this body: the attribute must exist."""
    problems = []
    for text in _strings(item.body):
        for data, tf_type, name, attribute in REFERENCE.findall(text):
            kind = "data" if data else "resources"
            if (kind, tf_type, name) not in declared:
                continue  # a resource of another directory: checked where it is declared
            schema = _schema(document, kind, tf_type)
            known = set(schema["readable"]) | set(schema["attributes"]) | set(schema["blocks"])
            if attribute not in known:
                problems.append(f"{item.where}: {tf_type}.{name} has no attribute {attribute!r}")
    return problems


def _schema(document: dict[str, Any], kind: str, tf_type: str) -> dict[str, Any]:
    for provider in ("google", "google-beta"):
        if tf_type in document.get(provider, {}).get(kind, {}):
            return document[provider][kind][tf_type]
    raise KeyError(tf_type)


def check_items(items: list[Item], document: dict[str, Any]) -> list[str]:
    """Every mistake in these items, as readable lines."""
    problems = []
    declared_by_file: dict[str, set[tuple]] = {}
    for item in items:
        directory = str(Path(item.file).parent)
        declared_by_file.setdefault(directory, set()).add((item.kind, item.type, item.name))
    for item in items:
        schema = document.get(item.provider, {}).get(item.kind, {}).get(item.type)
        if schema is None:
            problems.append(
                f"{item.where}: {item.type} is not a {item.provider} {item.kind} type "
                "(or run tests/infra/extract_provider_schema.py after adding it)"
            )
            continue
        problems += check_body(item.body, schema, item.where, top=True)
        problems += check_references(item, document, declared_by_file[str(Path(item.file).parent)])
    return problems


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The vendored schema extract."""
    return json.loads(SCHEMA_FILE.read_text())


@pytest.fixture(scope="module")
def items() -> list[Item]:
    """terraform/ as written."""
    return load_items()


def test_schema_covers_the_provider_range(document: dict[str, Any]) -> None:
    providers = TerraformDir.load(TERRAFORM).blocks["terraform"][0]["required_providers"][0]
    for provider in ("google", "google-beta"):
        extracted = tuple(int(n) for n in document[provider]["version"].split("."))
        lower, upper = (part.strip() for part in providers[provider]["version"].split(","))
        low = tuple(int(n) for n in re.findall(r"\d+", lower))
        high = tuple(int(n) for n in re.findall(r"\d+", upper))
        assert low <= extracted < high, f"{provider} {extracted} outside {lower}, {upper}"


def test_every_block_matches_the_provider_schema(
    items: list[Item], document: dict[str, Any]
) -> None:
    assert len(items) > 30
    problems = check_items(items, document)
    assert problems == [], "\n".join(problems)


def _find(items: list[Item], tf_type: str, name: str) -> Item:
    return next(i for i in items if i.type == tf_type and i.name == name)


def _with_body(items: list[Item], target: Item, body: dict[str, Any]) -> list[Item]:
    changed = Item(target.file, target.kind, target.type, target.name, body)
    return [changed if i is target else i for i in items]


def test_catches_an_unknown_nested_argument(items: list[Item], document: dict[str, Any]) -> None:
    service = _find(items, "google_cloud_run_v2_service", "main")
    body = copy.deepcopy(service.body)
    resources = body["template"][0]["containers"][0]["resources"][0]
    resources["cpu_idel"] = resources.pop("cpu_idle")  # a typo terraform validate would reject
    problems = check_items(_with_body(items, service, body), document)
    assert problems == [
        f"{service.where}.template.containers.resources: unknown argument or block 'cpu_idel'"
    ]


def test_catches_a_missing_required_argument(items: list[Item], document: dict[str, Any]) -> None:
    trigger = _find(items, "google_cloudbuild_trigger", "worker_deploy")
    body = copy.deepcopy(trigger.body)
    del body["git_file_source"][0]["path"]
    problems = check_items(_with_body(items, trigger, body), document)
    assert problems == [f"{trigger.where}.git_file_source: required argument path is missing"]


def test_catches_a_block_written_as_an_argument(
    items: list[Item], document: dict[str, Any]
) -> None:
    topic = _find(items, "google_pubsub_subscription", "push")
    body = copy.deepcopy(topic.body)
    body["retry_policy"] = {"minimum_backoff": "10s"}
    problems = check_items(_with_body(items, topic, body), document)
    assert problems == [f"{topic.where}: retry_policy is a block, written as an argument"]


def test_catches_a_deprecated_field(items: list[Item], document: dict[str, Any]) -> None:
    # The bindings carry deprecation only in descriptions; mark one field as the extract would.
    marked = copy.deepcopy(document)
    subscription = marked["google"]["resources"]["google_pubsub_subscription"]
    subscription["attributes"]["ack_deadline_seconds"]["deprecated"] = True
    problems = check_items(items, marked)
    assert problems
    assert all(p.endswith(": ack_deadline_seconds is deprecated") for p in problems)


def test_catches_a_reference_to_a_missing_attribute(
    items: list[Item], document: dict[str, Any]
) -> None:
    identity = _find(items, "google_project_service_identity", "pubsub")
    assert identity.provider == "google-beta"
    locals_text = (TERRAFORM / "main.tf").read_text()
    assert "google_project_service_identity.pubsub.email" in locals_text
    output = copy.deepcopy(_find(items, "google_pubsub_topic", "results").body)
    output["labels"] = {"agent": "${google_project_service_identity.pubsub.mail}"}
    results = _find(items, "google_pubsub_topic", "results")
    problems = check_items(_with_body(items, results, output), document)
    assert problems == [
        f"{results.where}: google_project_service_identity.pubsub has no attribute 'mail'"
    ]


def test_catches_an_unknown_resource_type(items: list[Item], document: dict[str, Any]) -> None:
    extra = Item("main.tf", "resources", "google_cloud_run_service_v3", "x", {"name": "x"})
    problems = check_items([*items, extra], document)
    assert len(problems) == 1
    assert "google_cloud_run_service_v3 is not a google resources type" in problems[0]
