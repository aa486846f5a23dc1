# Cloud Build triggers: the gateway image on changes to gateway-image/, and per deployment the
# worker image (test, build, push, deploy). A new revision overlaps the old one and two logins of
# one IB user fight, so live deploys wait for a person with the Cloud Build Approver role.

locals {
  cloudbuild_enabled = var.cloudbuild.enabled
  image_repository   = "${var.region}-docker.pkg.dev/${var.project_id}/${var.artifact_registry_repository_id}"
  builder_member     = local.cloudbuild_enabled ? "serviceAccount:${google_service_account.builder[0].email}" : null
}

resource "google_service_account" "builder" {
  count = local.cloudbuild_enabled ? 1 : 0

  project      = var.project_id
  account_id   = "ib-cloudbuild"
  display_name = "IB image builds and deploys"
  description  = "Runs cloudbuild/*.yaml: pushes images to ${var.artifact_registry_repository_id} and deploys new digests to ib-<mode>."
}

resource "google_artifact_registry_repository_iam_member" "builder_pushes_images" {
  count = local.cloudbuild_enabled ? 1 : 0

  project    = var.project_id
  location   = var.region
  repository = var.create_artifact_registry_repository ? google_artifact_registry_repository.main[0].name : var.artifact_registry_repository_id
  role       = "roles/artifactregistry.writer"
  member     = local.builder_member
}

# Builds with a user-managed account must write their logs themselves (CLOUD_LOGGING_ONLY).
resource "google_project_iam_member" "builder_writes_logs" {
  count = local.cloudbuild_enabled ? 1 : 0

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.builder_member
}

# Deploying a revision: update the one service, and act as its runtime account.
resource "google_cloud_run_v2_service_iam_member" "builder_deploys" {
  for_each = local.cloudbuild_enabled ? toset(keys(var.deployments)) : toset([])

  project  = var.project_id
  location = var.region
  name     = module.deployment[each.key].service_name
  role     = "roles/run.developer"
  member   = local.builder_member
}

resource "google_service_account_iam_member" "builder_acts_as_runtime" {
  for_each = local.cloudbuild_enabled ? toset(keys(var.deployments)) : toset([])

  service_account_id = "projects/${var.project_id}/serviceAccounts/${module.deployment[each.key].runtime_service_account}"
  role               = "roles/iam.serviceAccountUser"
  member             = local.builder_member
}

resource "google_cloudbuild_trigger" "gateway_image" {
  count = local.cloudbuild_enabled ? 1 : 0

  project         = var.project_id
  location        = var.cloudbuild.location
  name            = "ib-gateway-image"
  description     = "Builds the IB Gateway image with the pinned versions and pushes it by commit and channel tag."
  filename        = "cloudbuild/gateway-image.yaml"
  included_files  = ["gateway-image/**", "cloudbuild/gateway-image.yaml"]
  service_account = google_service_account.builder[0].id

  github {
    owner = var.cloudbuild.github_owner
    name  = var.cloudbuild.github_repo
    push {
      branch = var.cloudbuild.branch
    }
  }

  substitutions = {
    _GCP_REGION = var.region
    _CHANNEL    = var.cloudbuild.gateway_channel
  }
}

resource "google_cloudbuild_trigger" "worker_image" {
  for_each = local.cloudbuild_enabled ? var.deployments : {}

  project         = var.project_id
  location        = var.cloudbuild.location
  name            = "ib-worker-image-${each.key}"
  description     = "Tests, builds and pushes the worker image, then deploys its digest to ib-${each.key}."
  filename        = "cloudbuild/worker-image.yaml"
  service_account = google_service_account.builder[0].id
  ignored_files   = ["terraform/**", "**/*.md"]

  github {
    owner = var.cloudbuild.github_owner
    name  = var.cloudbuild.github_repo
    push {
      branch = var.cloudbuild.branch
    }
  }

  # Live deploys always wait for approval; paper may opt in.
  approval_config {
    approval_required = each.key == "live" || each.value.deploy_requires_approval
  }

  substitutions = {
    _GCP_REGION    = var.region
    _TRADING_MODE  = each.key
    _MY_IMAGE_TAG  = each.key
    _GATEWAY_TAG   = var.cloudbuild.gateway_channel
    _IMAGE_REPO_ID = var.artifact_registry_repository_id
  }
}
