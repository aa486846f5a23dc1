# Least privilege: each identity gets only what its one job needs, granted additively on the
# narrowest resource that carries the permission.

# Only this deployment's runtime account reads this deployment's IB credentials.
resource "google_secret_manager_secret_iam_member" "runtime_reads_credentials" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.ib_credentials.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${local.runtime_email}"
}

resource "google_pubsub_topic_iam_member" "runtime_publishes_results" {
  project = var.project_id
  topic   = var.results_topic
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${local.runtime_email}"
}

# Firestore has no per-database IAM resource: grant at project level, limited to one database.
resource "google_project_iam_member" "runtime_uses_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${local.runtime_email}"

  condition {
    title       = "only-${replace(var.firestore_database, "/[()]/", "")}-database"
    description = "Idempotency records and trading configuration live in this database only."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
  }
}

resource "google_bigquery_dataset_iam_member" "runtime_writes_rows" {
  project    = var.project_id
  dataset_id = var.bigquery_dataset
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${local.runtime_email}"
}

# Queries (e.g. reading the last snapshot) run as jobs, which exist only at project level.
resource "google_project_iam_member" "runtime_runs_queries" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${local.runtime_email}"
}

# The push subscriptions' (or Eventarc trigger's) identity may invoke this service and nothing
# else; the intents and the dead-letter push subscriptions share it.
resource "google_cloud_run_v2_service_iam_member" "push_invokes_service" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.main.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push_invoker.email}"
}

# The Pub/Sub service agent mints the push OIDC tokens as the invoker account.
resource "google_service_account_iam_member" "pubsub_agent_signs_push_tokens" {
  service_account_id = google_service_account.push_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = var.pubsub_service_agent
}

# Dead-lettering: the service agent acks on the source subscription and publishes to the DLQ.
resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = var.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_forwards_dead_letters" {
  count = var.delivery == "push" ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.push[0].name
  role         = "roles/pubsub.subscriber"
  member       = var.pubsub_service_agent
}
