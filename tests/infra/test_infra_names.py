"""Terraform uses exactly the names in worker/names.json, which code and infra share."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .tfload import REPO, NameResolver, TerraformDir, block

MODES = ("paper", "live")


@pytest.fixture(params=MODES)
def resolve(request: pytest.FixtureRequest, root: TerraformDir, names: dict) -> NameResolver:
    """A resolver for one trading mode."""
    return NameResolver(root, names, request.param)


def test_root_reads_names_json(root: TerraformDir) -> None:
    assert root.locals["worker_dir"] == "${path.module}/../worker"
    assert "names.json" in root.locals["names"]
    assert root.locals["names"].startswith("${jsondecode(file(")
    # The relative path terraform resolves from terraform/ is the real file.
    assert (REPO / "terraform" / ".." / "worker" / "names.json").is_file()


def test_module_resources_carry_shared_names(
    module: TerraformDir, resolve: NameResolver, names: dict
) -> None:
    pubsub, mode = names["pubsub"], resolve.mode
    expected = {
        ("google_pubsub_topic", "intents"): pubsub["intents_topic"],
        ("google_pubsub_subscription", "push"): pubsub["intents_push_subscription"],
        ("google_pubsub_topic", "dead_letter"): pubsub["dead_letter_topic"],
        ("google_pubsub_subscription", "dead_letter"): pubsub["dead_letter_subscription"],
        ("google_pubsub_subscription", "dead_letter_push"): pubsub["dead_letter_push_subscription"],
        ("google_cloud_run_v2_service", "main"): names["cloud_run"]["service"],
    }
    for (rtype, name), pattern in expected.items():
        body = module.resource(rtype, name)
        assert resolve(body["name"]) == pattern.format(mode=mode), f"{rtype}.{name}"


def test_dead_letter_push_path_comes_from_names_json(
    module: TerraformDir, resolve: NameResolver, names: dict
) -> None:
    push = block(module.resource("google_pubsub_subscription", "dead_letter_push"), "push_config")
    service_uri = "${google_cloud_run_v2_service.main.uri}"
    endpoint = push["push_endpoint"]
    # The path is the module input var.names.dead_letter_push_path, filled from names.json.
    assert endpoint == service_uri + "${var.names.dead_letter_push_path}"
    path = resolve(endpoint.removeprefix(service_uri))
    assert path == names["pubsub"]["dead_letter_push_path"] == "/dead-letters"


def test_service_is_ib_mode(module: TerraformDir, resolve: NameResolver) -> None:
    service = module.resource("google_cloud_run_v2_service", "main")
    assert resolve(service["name"]) == f"ib-{resolve.mode}"


def test_results_topic(root: TerraformDir, resolve: NameResolver, names: dict) -> None:
    topic = root.resource("google_pubsub_topic", "results")
    assert resolve(topic["name"]) == names["pubsub"]["results_topic"]
    call = root.modules["deployment"]
    assert "google_pubsub_topic.results[0].name" in call["results_topic"]
    assert "local.results_topic" in call["results_topic"]


def test_ttl_policy_on_the_expiry_field(root: TerraformDir, resolve: NameResolver, names) -> None:
    ttl = root.resource("google_firestore_field", "runs_ttl")
    assert resolve(ttl["collection"]) == names["firestore"]["runs_collection"]
    assert resolve(ttl["field"]) == names["firestore"]["ttl_field"] == "expires_at"
    assert ttl["ttl_config"] == [{}]


def test_composite_indexes_come_from_names_json(root: TerraformDir, names: dict) -> None:
    index = root.resource("google_firestore_index", "main")
    assert index["for_each"] == "${local.firestore_indexes}"
    assert "local.names.firestore.indexes" in root.locals["firestore_indexes"]
    fields = block(index, "dynamic")["fields"]
    assert fields["for_each"] == "${each.value.fields}"
    assert block(fields, "content") == {
        "field_path": "${fields.value[0]}",
        "order": "${fields.value[1]}",
    }
    for entry in names["firestore"]["indexes"]:
        # Firestore rejects composite indexes of one field and unknown orders.
        assert len(entry["fields"]) >= 2
        assert {order for _, order in entry["fields"]} <= {"ASCENDING", "DESCENDING"}


def _bigquery_schema(path: str) -> list[dict[str, Any]]:
    return json.loads((REPO / "worker" / path).read_text())


def test_bigquery_tables_use_the_worker_schema_files(root: TerraformDir, names: dict) -> None:
    table = root.resource("google_bigquery_table", "main")
    assert table["for_each"] == "${local.bq_tables}"
    assert root.locals["bq_tables"] == "${local.names.bigquery.tables}"
    assert 'file("${local.worker_dir}/${each.value.schema}")' in table["schema"]
    assert block(table, "time_partitioning")["field"] == "${each.value.partition_field}"
    assert table["clustering"] == "${each.value.clustering}"
    assert root.locals["bq_dataset"] == "${local.names.bigquery.dataset}"
    for spec in names["bigquery"]["tables"].values():
        schema = _bigquery_schema(spec["schema"])
        partition = [col for col in schema if col["name"] == spec["partition_field"]]
        assert partition, f"{spec['partition_field']} not in {spec['schema']}"
        assert partition[0]["type"] in {"TIMESTAMP", "DATE", "DATETIME"}
        for column in schema:
            assert set(column) >= {"name", "type", "mode"}
        assert set(spec["clustering"]) <= {col["name"] for col in schema}


def test_health_path_for_both_probes(module: TerraformDir, resolve: NameResolver, names) -> None:
    container = block(
        block(module.resource("google_cloud_run_v2_service", "main"), "template"), "containers"
    )
    assert names["cloud_run"]["health_path"] == "/healthz"
    for probe in ("startup_probe", "liveness_probe"):
        path = block(block(container, probe), "http_get")["path"]
        assert resolve(path) == "/healthz", probe


def test_scheduler_envelope_matches_names_json(module: TerraformDir, names: dict) -> None:
    target = block(module.resource("google_cloud_scheduler_job", "intent"), "pubsub_target")
    data_keys = re.search(r"jsonencode\(\{(.+?)\}\)", target["data"]).group(1)
    assert target["data"].startswith("${base64encode(jsonencode(")
    assert sorted(re.findall(r"(\w+) =", data_keys)) == sorted(names["scheduler_envelope"]["data"])
    attribute_names = set(re.findall(r"\{(\w+) =", target["attributes"]))
    assert attribute_names >= set(names["scheduler_envelope"]["attributes"])
    assert attribute_names <= set(names["pubsub"]["attributes"])


def test_scheduler_publishes_to_the_intents_topic(module: TerraformDir) -> None:
    target = block(module.resource("google_cloud_scheduler_job", "intent"), "pubsub_target")
    assert target["topic_name"] == "${google_pubsub_topic.intents.id}"


def test_results_topic_keeps_outcomes(root: TerraformDir) -> None:
    # A topic without subscriptions drops what is published to it.
    archive = root.resource("google_pubsub_subscription", "results_archive")
    assert "google_pubsub_topic.results[0].id" in archive["topic"]
    assert "local.results_topic" in archive["topic"]
    assert block(archive, "expiration_policy") == {"ttl": ""}
    assert root.variables["results_archive_subscription"]["default"]
