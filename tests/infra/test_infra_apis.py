"""A fresh project: every resource waits for the API it needs, and every such API is enabled."""

from __future__ import annotations

from .tfload import TerraformDir

# The API each resource type is created through (longest matching prefix wins).
API_OF = {
    "google_artifact_registry_": "artifactregistry.googleapis.com",
    "google_bigquery_": "bigquery.googleapis.com",
    "google_cloudbuild_": "cloudbuild.googleapis.com",
    "google_cloud_scheduler_": "cloudscheduler.googleapis.com",
    "google_cloud_run_v2_": "run.googleapis.com",
    "google_eventarc_": "eventarc.googleapis.com",
    "google_firestore_": "firestore.googleapis.com",
    "google_project_iam_": "cloudresourcemanager.googleapis.com",
    "google_project_service_identity": "pubsub.googleapis.com",
    "google_pubsub_": "pubsub.googleapis.com",
    "google_secret_manager_": "secretmanager.googleapis.com",
    "google_service_account": "iam.googleapis.com",
}
ENABLES = "${google_project_service.main}"


def _api(resource_type: str) -> str:
    matches = [prefix for prefix in API_OF if resource_type.startswith(prefix)]
    assert matches, f"{resource_type}: which API does it need? Add it to API_OF"
    return API_OF[max(matches, key=len)]


def test_every_api_a_resource_needs_is_enabled(root: TerraformDir, module: TerraformDir) -> None:
    apis = set(root.locals["apis"])
    for tf in (root, module):
        for rtype, name, _ in tf.all_resources():
            if rtype != "google_project_service":
                assert _api(rtype) in apis, f"{rtype}.{name}"
    assert "cloudresourcemanager.googleapis.com" in apis
    enable = root.resource("google_project_service", "main")
    assert enable["for_each"] == "${var.enable_apis ? toset(local.apis) : toset([])}"
    assert enable["disable_on_destroy"] is False


def test_every_root_resource_waits_for_the_apis(root: TerraformDir) -> None:
    # Explicitly, also on the create_*=false paths where no other resource orders it.
    for rtype, name, body in root.all_resources():
        if rtype == "google_project_service":
            continue
        waits = ENABLES in body.get("depends_on", [])
        # A grant on a deployment's service or account waits through the module (below).
        through_module = "module.deployment[" in str(body)
        assert waits or through_module, f"{rtype}.{name} may run before its API is enabled"


def test_every_module_resource_waits_for_the_apis(root: TerraformDir) -> None:
    assert ENABLES in root.modules["deployment"]["depends_on"]


def test_nothing_is_read_from_an_api_at_plan_time(root: TerraformDir) -> None:
    # Data sources are read during plan, before any API could be enabled. The module's runtime
    # account look-up only happens when an existing account is reused (its project has IAM).
    assert not root._labelled("data")
