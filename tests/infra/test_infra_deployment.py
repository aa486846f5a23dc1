"""Reliability settings of one deployment: push subscription, dead letters, Cloud Run, schedules."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .tfeval import evaluate
from .tfload import REPO, TerraformDir, block


def _service(module: TerraformDir) -> dict[str, Any]:
    return module.resource("google_cloud_run_v2_service", "main")


def _container(module: TerraformDir) -> dict[str, Any]:
    return block(block(_service(module), "template"), "containers")


def _env(module: TerraformDir) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in _container(module)["env"]}


def test_push_subscription_uses_oidc_with_service_url_audience(module: TerraformDir) -> None:
    push = block(module.resource("google_pubsub_subscription", "push"), "push_config")
    token = block(push, "oidc_token")
    assert token["service_account_email"] == "${google_service_account.push_invoker.email}"
    assert token["audience"] == "${google_cloud_run_v2_service.main.uri}"
    assert push["push_endpoint"].startswith("${google_cloud_run_v2_service.main.uri}")
    # Wrapped envelope: attribute names with '_' must not travel as headers.
    assert "no_wrapper" not in push


def test_push_subscription_reliability(module: TerraformDir) -> None:
    sub = module.resource("google_pubsub_subscription", "push")
    assert sub["ack_deadline_seconds"] == 600
    assert sub["topic"] == "${google_pubsub_topic.intents.id}"
    assert block(sub, "retry_policy") == {"minimum_backoff": "10s", "maximum_backoff": "600s"}
    assert block(sub, "expiration_policy") == {"ttl": ""}
    dead = block(sub, "dead_letter_policy")
    assert dead["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert dead["max_delivery_attempts"] == "${var.max_delivery_attempts}"


def test_max_delivery_attempts_within_pubsub_limits(module: TerraformDir) -> None:
    variable = module.variables["max_delivery_attempts"]
    assert 5 <= variable["default"] <= 100
    assert "5" in variable["validation"][0]["condition"]
    assert "100" in variable["validation"][0]["condition"]


def test_dead_letter_topic_has_a_pull_subscription(module: TerraformDir) -> None:
    sub = module.resource("google_pubsub_subscription", "dead_letter")
    assert sub["topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert "push_config" not in sub
    assert block(sub, "expiration_policy") == {"ttl": ""}


def _dead_letter_push(module: TerraformDir) -> dict[str, Any]:
    return module.resource("google_pubsub_subscription", "dead_letter_push")


def test_dead_letter_topic_pushes_to_the_worker(module: TerraformDir) -> None:
    sub = _dead_letter_push(module)
    assert sub["topic"] == "${google_pubsub_topic.dead_letter.id}"
    push = block(sub, "push_config")
    assert push["push_endpoint"] == (
        "${google_cloud_run_v2_service.main.uri}${var.names.dead_letter_push_path}"
    )
    # The same identity and audience as the intents push, so the same edge check admits it.
    intents = block(module.resource("google_pubsub_subscription", "push"), "push_config")
    assert block(push, "oidc_token") == block(intents, "oidc_token")
    assert "no_wrapper" not in push


def test_dead_letter_push_subscription_reliability(module: TerraformDir) -> None:
    sub = _dead_letter_push(module)
    assert 60 <= sub["ack_deadline_seconds"] <= 600
    assert block(sub, "retry_policy") == {"minimum_backoff": "10s", "maximum_backoff": "600s"}
    assert block(sub, "expiration_policy") == {"ttl": ""}
    # A dead-letter policy here could only point at its own topic: a loop.
    assert "dead_letter_policy" not in sub
    assert sub["labels"] == {"trading-mode": "${var.trading_mode}"}
    assert "${google_cloud_run_v2_service_iam_member.push_invokes_service}" in sub["depends_on"]


def test_dead_letter_push_exists_where_dead_letters_do(module: TerraformDir) -> None:
    # Only the push path has a dead-letter policy; Eventarc's subscription never dead-letters.
    push = module.resource("google_pubsub_subscription", "push")
    assert _dead_letter_push(module)["count"] == push["count"]
    assert "dead_letter_policy" not in module.resource("google_eventarc_trigger", "intents")


def test_module_names_input_matches_its_type(root: TerraformDir, module: TerraformDir) -> None:
    passed = set(root.modules["deployment"]["names"])
    declared = set(re.findall(r"(\w+) *= *string", module.variables["names"]["type"]))
    assert passed == declared
    assert {"dead_letter_push_subscription", "dead_letter_push_path"} <= declared


def test_pubsub_service_agent_grants(module: TerraformDir) -> None:
    publisher = module.resource(
        "google_pubsub_topic_iam_member", "pubsub_agent_publishes_dead_letters"
    )
    assert (publisher["topic"], publisher["role"]) == (
        "${google_pubsub_topic.dead_letter.name}",
        "roles/pubsub.publisher",
    )
    assert publisher["member"] == "${var.pubsub_service_agent}"
    subscriber = module.resource(
        "google_pubsub_subscription_iam_member", "pubsub_agent_forwards_dead_letters"
    )
    assert subscriber["subscription"] == "${google_pubsub_subscription.push[0].name}"
    assert subscriber["role"] == "roles/pubsub.subscriber"
    assert subscriber["member"] == "${var.pubsub_service_agent}"


def test_pubsub_service_agent_is_created_not_assembled(root: TerraformDir) -> None:
    # A fresh project has no Pub/Sub service agent until something asks for it.
    identity = root.resource("google_project_service_identity", "pubsub")
    assert identity["service"] == "pubsub.googleapis.com"
    assert identity["provider"] in ("google-beta", "${google-beta}")
    assert root.locals["pubsub_service_agent"] == (
        "serviceAccount:${google_project_service_identity.pubsub.email}"
    )
    assert "gcp-sa-pubsub" not in root.text
    assert root.modules["deployment"]["pubsub_service_agent"] == "${local.pubsub_service_agent}"


def test_cloud_run_is_a_singleton(module: TerraformDir) -> None:
    scaling = block(block(_service(module), "template"), "scaling")
    assert scaling["max_instance_count"] == 1
    assert scaling["min_instance_count"] == "${var.min_instances}"
    assert module.variables["min_instances"]["default"] == 0


def test_cpu_always_allocated(module: TerraformDir) -> None:
    # A gateway with CPU only during requests logs in throttled: deliveries get 503 meanwhile.
    resources = block(_container(module), "resources")
    assert resources["cpu_idle"] is False
    assert resources["limits"] == {"cpu": "${var.cpu}", "memory": "${var.memory}"}
    assert module.variables["cpu"]["default"] == "2"
    assert module.variables["memory"]["default"] == "2Gi"


MODULE_VARS = {
    "env": {},
    "trading_mode": "paper",
    "allow_live_trading": False,
    "project_id": "p",
    "results_topic": "ib-intent-results",
    "firestore_database": "(default)",
    "bigquery_dataset": "ib_trading",
    "names": {"service": "ib-paper"},
    "concurrency": 8,
    "ib_account": None,
}


def _plain_env(module: TerraformDir, tmp_path: Path, **variables: Any) -> dict[str, str]:
    locals_ = {name: module.locals[name] for name in ("plain_env", "read_only_api")}
    return evaluate(tmp_path, locals_, {**MODULE_VARS, **variables}, "local.plain_env")


@pytest.mark.parametrize(
    ("mode", "allow", "read_only"),
    [("paper", False, "no"), ("paper", True, "no"), ("live", False, "yes"), ("live", True, "no")],
)
def test_read_only_api_follows_allow_live_trading(
    module: TerraformDir, tmp_path: Path, mode: str, allow: bool, read_only: str
) -> None:
    env = _plain_env(module, tmp_path, trading_mode=mode, allow_live_trading=allow)
    assert env["READ_ONLY_API"] == read_only
    assert env["ALLOW_LIVE_TRADING"] == str(allow).lower()
    assert env["TRADING_MODE"] == mode


def test_extra_env_cannot_reopen_a_read_only_live_api(module: TerraformDir, tmp_path: Path) -> None:
    env = _plain_env(
        module, tmp_path, trading_mode="live", env={"READ_ONLY_API": "no", "LOG_LEVEL": "debug"}
    )
    assert (env["READ_ONLY_API"], env["LOG_LEVEL"]) == ("yes", "debug")


@pytest.mark.parametrize("concurrency", [1, 8, 40])
def test_gunicorn_threads_leave_two_for_health_checks(
    module: TerraformDir, tmp_path: Path, concurrency: int
) -> None:
    env = _plain_env(module, tmp_path, concurrency=concurrency)
    assert env["GUNICORN_THREADS"] == str(concurrency + 2)
    # ... and the worker's gunicorn settings read exactly that variable.
    script = "import worker.gunicorn_conf as c; print(c.threads, c.workers)"
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "GUNICORN_THREADS": env["GUNICORN_THREADS"]},
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout.split()
    assert out == [str(concurrency + 2), "1"]
    template = block(_service(module), "template")
    assert template["max_instance_request_concurrency"] == "${var.concurrency}"


def test_concurrency_and_request_timeout(module: TerraformDir) -> None:
    template = block(_service(module), "template")
    assert template["max_instance_request_concurrency"] == "${var.concurrency}"
    assert template["timeout"] == "${var.request_timeout_seconds}s"
    timeout = module.variables["request_timeout_seconds"]
    assert timeout["default"] >= 600
    assert "var.request_timeout_seconds >= 600" in timeout["validation"][0]["condition"]


def test_probes_use_healthz_within_240_seconds(module: TerraformDir) -> None:
    container = _container(module)
    startup = block(container, "startup_probe")
    assert startup["failure_threshold"] * startup["period_seconds"] <= 240
    for name in ("startup_probe", "liveness_probe"):
        probe = block(container, name)
        assert block(probe, "http_get")["path"] == "${var.names.health_path}"
        assert block(probe, "http_get")["port"] == "${local.container_port}"


def test_credentials_secret_reaches_the_container_as_env(module: TerraformDir) -> None:
    ref = block(block(_env(module)["IB_CREDENTIALS_JSON"], "value_source"), "secret_key_ref")
    assert ref["secret"] == "${google_secret_manager_secret.ib_credentials.secret_id}"
    assert "value" not in _env(module)["IB_CREDENTIALS_JSON"]


def test_plain_env_names_the_deployment(module: TerraformDir) -> None:
    plain_env = module.locals["plain_env"]
    for name in ("TRADING_MODE", "PROJECT_ID", "RESULTS_TOPIC", "FIRESTORE_DATABASE", "BQ_DATASET"):
        assert re.search(rf"\b{name} *=", plain_env), name
    dynamic_env = block(_container(module), "dynamic")["env"]
    assert dynamic_env["for_each"] == "${local.plain_env}"


def test_secret_has_no_value_in_terraform(root: TerraformDir, module: TerraformDir) -> None:
    for tf in (root, module):
        assert not tf.resources("google_secret_manager_secret_version")
        assert "secret_data" not in tf.text


def test_terraform_leaves_what_gcloud_deploys_alone(module: TerraformDir) -> None:
    # cloudbuild/deploy.sh runs `gcloud run services update --image`, which also writes client
    # fields and revision annotations. Were terraform to revert any of them, the next apply would
    # start a revision: a new IB login (on live, a second-factor prompt).
    ignored = set(block(_service(module), "lifecycle")["ignore_changes"])
    assert {
        "${template[0].containers[0].image}",
        "${template[0].annotations}",
        "${template[0].labels}",
        "${template[0].revision}",
        "client",
        "client_version",
    } <= ignored
    template = block(_service(module), "template")
    assert "annotations" not in template
    assert "labels" not in template  # ignored, so setting them here would silently do nothing
    deploy = (REPO / "cloudbuild" / "deploy.sh").read_text()
    assert re.findall(r"gcloud run services (\w+)", deploy) == ["update"]
    assert re.search(r'--image="\$ref"', deploy)
    assert not re.search(r"--(update|set)-(env-vars|labels|annotations|secrets)", deploy)


def test_scheduler_defaults(module: TerraformDir) -> None:
    job = module.resource("google_cloud_scheduler_job", "intent")
    assert job["for_each"] == "${var.schedules}"
    assert job["time_zone"] == "${each.value.time_zone}"
    schedule_type = module.variables["schedules"]["type"]
    assert 'time_zone = optional(string, "America/New_York")' in schedule_type
    assert "dedupe_window = number" in schedule_type  # required: retries need one key
    assert block(job, "retry_config")["retry_count"] == "${each.value.retry_count}"


def test_eventarc_variant_replaces_the_push_subscription(module: TerraformDir) -> None:
    trigger = module.resource("google_eventarc_trigger", "intents")
    assert trigger["count"] == '${var.delivery == "eventarc" ? 1 : 0}'
    push = module.resource("google_pubsub_subscription", "push")
    assert push["count"] == '${var.delivery == "push" ? 1 : 0}'
    assert trigger["service_account"] == "${google_service_account.push_invoker.email}"
    criteria = block(trigger, "matching_criteria")
    assert criteria["value"] == "google.cloud.pubsub.topic.v1.messagePublished"
    transport = block(block(trigger, "transport"), "pubsub")
    assert transport["topic"] == "${google_pubsub_topic.intents.id}"


def test_paper_and_live_are_instances_of_one_module(root: TerraformDir) -> None:
    call = root.modules["deployment"]
    assert call["source"] == "./modules/deployment"
    assert call["for_each"] == "${var.deployments}"
    assert call["trading_mode"] == "${each.key}"
    validation = root.variables["deployments"]["validation"][0]
    assert '["paper", "live"]' in validation["condition"]


def test_module_call_matches_module_variables(root: TerraformDir, module: TerraformDir) -> None:
    meta = {"source", "for_each", "depends_on"}
    passed = set(root.modules["deployment"]) - meta
    assert passed <= set(module.variables)
    required = {name for name, var in module.variables.items() if "default" not in var}
    assert required <= passed


def test_root_deployment_attributes_reach_the_module(root: TerraformDir) -> None:
    call = root.modules["deployment"]
    # Top-level attributes of the deployments object come before the nested schedules type.
    top_level = root.variables["deployments"]["type"].split("schedules = optional(")[0]
    attributes = set(re.findall(r"(\w+) = optional", top_level)) | {"schedules"}
    assert len(attributes) > 10
    # deploy_requires_approval is read by the Cloud Build trigger, not the module.
    for attribute in attributes - {"deploy_requires_approval"}:
        assert call[attribute] == f"${{each.value.{attribute}}}", attribute
