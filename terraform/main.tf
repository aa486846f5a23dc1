# Names shared with the worker come from worker/names.json so the two can never drift apart.
locals {
  worker_dir = "${path.module}/../worker"
  names      = jsondecode(file(coalesce(var.names_file, "${local.worker_dir}/names.json")))

  runs_collection = local.names.firestore.runs_collection
  ttl_field       = local.names.firestore.ttl_field
  results_topic   = local.names.pubsub.results_topic
  bq_dataset      = local.names.bigquery.dataset
  bq_tables       = local.names.bigquery.tables

  # Firestore composite indexes, keyed by collection and field list for stable addresses.
  firestore_indexes = {
    for index in local.names.firestore.indexes :
    "${index.collection}:${join(",", [for f in index.fields : f[0]])}" => index
  }

  # The Pub/Sub service agent signs push OIDC tokens and moves messages to dead-letter topics.
  pubsub_service_agent = "serviceAccount:${google_project_service_identity.pubsub.email}"

  # Every API a resource here needs. cloudresourcemanager: project IAM grants and the provider's
  # project look-ups; the others by name.
  apis = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
  ]
}

resource "google_project_service" "main" {
  for_each = var.enable_apis ? toset(local.apis) : toset([])

  project = var.project_id
  service = each.value
  # Turning an API off on destroy would break anything else in the project that uses it.
  disable_on_destroy = false
}

# The Pub/Sub service agent exists only once something asks for it: create it, rather than
# assemble its e-mail from the project number and hope. Fresh projects have no such account yet.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.main]
}
