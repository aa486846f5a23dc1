# Cloud Build: one build trigger and a deploy trigger per deployment that needs approval.
#
#   ib-worker-build (every push to the branch): cloudbuild/worker-image.yaml builds the gateway
#     image when its inputs changed (a step, never a race with a second trigger), tests, builds
#     and pushes the worker image, and deploys its digest to paper (unless paper asks for
#     approval).
#   ib-worker-deploy-<mode> (run by hand, approval required): cloudbuild/worker-deploy.yaml
#     deploys the digest the previous stage ran (live: the one paper runs) and nothing else, so
#     the approval comes right before the deploy and its second-factor prompt.
#
# Needs the GitHub repository connected to Cloud Build first (terraform/README.md, "First
# deploy", step 8): a trigger for an unconnected repository fails to create.

locals {
  cloudbuild_enabled = var.cloudbuild.enabled
  image_repository   = "${var.region}-docker.pkg.dev/${var.project_id}/${var.artifact_registry_repository_id}"
  builder_member     = local.cloudbuild_enabled ? "serviceAccount:${google_service_account.builder[0].email}" : null
  github_uri         = "https://github.com/${coalesce(var.cloudbuild.github_owner, "-")}/${coalesce(var.cloudbuild.github_repo, "-")}"

  # The build deploys paper itself unless paper asks for approval; live always waits for it.
  paper_auto_deploy = contains(keys(var.deployments), "paper") && !try(var.deployments["paper"].deploy_requires_approval, false)
  deploy_triggers = local.cloudbuild_enabled ? {
    for mode, d in var.deployments : mode => d if mode == "live" || d.deploy_requires_approval
  } : {}
}

resource "google_service_account" "builder" {
  count = local.cloudbuild_enabled ? 1 : 0

  project      = var.project_id
  account_id   = "ib-cloudbuild"
  display_name = "IB image builds and deploys"
  description  = "Runs cloudbuild/*.yaml: pushes images to ${var.artifact_registry_repository_id} and deploys new digests to ib-<mode>."

  depends_on = [google_project_service.main]
}

resource "google_artifact_registry_repository_iam_member" "builder_pushes_images" {
  count = local.cloudbuild_enabled ? 1 : 0

  project    = var.project_id
  location   = var.region
  repository = var.create_artifact_registry_repository ? google_artifact_registry_repository.main[0].name : var.artifact_registry_repository_id
  role       = "roles/artifactregistry.writer"
  member     = local.builder_member

  depends_on = [google_project_service.main]
}

# Builds with a user-managed account must write their logs themselves (CLOUD_LOGGING_ONLY).
resource "google_project_iam_member" "builder_writes_logs" {
  count = local.cloudbuild_enabled ? 1 : 0

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.builder_member

  depends_on = [google_project_service.main]
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

resource "google_cloudbuild_trigger" "worker_build" {
  count = local.cloudbuild_enabled ? 1 : 0

  project         = var.project_id
  location        = var.cloudbuild.location
  name            = "ib-worker-build"
  description     = "Builds the gateway image if its inputs changed, tests, builds and pushes the worker image, deploys it to paper."
  filename        = "cloudbuild/worker-image.yaml"
  service_account = google_service_account.builder[0].id
  # Documentation changes build nothing that ships; gateway-image/ changes do (a step rebuilds it).
  ignored_files = ["terraform/**", "**/*.md", "docs/**"]

  github {
    owner = var.cloudbuild.github_owner
    name  = var.cloudbuild.github_repo
    push {
      branch = var.cloudbuild.branch
    }
  }

  substitutions = {
    _GCP_REGION    = var.region
    _IMAGE_REPO_ID = var.artifact_registry_repository_id
    _CHANNEL       = var.cloudbuild.gateway_channel
    _DEPLOY_MODE   = local.paper_auto_deploy ? "paper" : ""
  }

  depends_on = [google_project_service.main]
}

# Run by hand (`gcloud builds triggers run ib-worker-deploy-live --branch=main`); waits for a
# person with roles/cloudbuild.builds.approver, then deploys within a minute or two.
resource "google_cloudbuild_trigger" "worker_deploy" {
  for_each = local.deploy_triggers

  project         = var.project_id
  location        = var.cloudbuild.location
  name            = "ib-worker-deploy-${each.key}"
  description     = "After approval, deploys to ib-${each.key} the worker digest ${each.key == "live" && local.paper_auto_deploy ? "paper runs" : "last built"}."
  service_account = google_service_account.builder[0].id

  source_to_build {
    uri       = local.github_uri
    ref       = "refs/heads/${var.cloudbuild.deploy_branch}"
    repo_type = "GITHUB"
  }

  git_file_source {
    path      = "cloudbuild/worker-deploy.yaml"
    uri       = local.github_uri
    revision  = "refs/heads/${var.cloudbuild.deploy_branch}"
    repo_type = "GITHUB"
  }

  approval_config {
    approval_required = true
  }

  substitutions = {
    _GCP_REGION    = var.region
    _IMAGE_REPO_ID = var.artifact_registry_repository_id
    _TRADING_MODE  = each.key
    # Build once: live deploys the digest paper exercised (when paper deploys automatically).
    _SOURCE_TAG = each.key == "live" && local.paper_auto_deploy ? "paper" : "built"
  }

  depends_on = [google_project_service.main]
}
