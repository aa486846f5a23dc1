# Project-level resources shared by every deployment. Each has a create toggle so that a project
# that already has it (users of the earlier ib-trading system do) can import or skip it.

resource "google_artifact_registry_repository" "main" {
  count = var.create_artifact_registry_repository ? 1 : 0
  #checkov:skip=CKV_GCP_84:Images hold no secrets (credentials come from Secret Manager at run time); Google-managed encryption is enough and a KMS key would add cost and a failure mode.

  project       = var.project_id
  location      = var.region
  repository_id = var.artifact_registry_repository_id
  format        = "DOCKER"
  description   = "IB Gateway and worker images for Cloud Run."

  # Every worker build pushes a new digest; keep recent ones for rollback, drop old untagged ones.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }
  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.main]
}

resource "google_firestore_database" "main" {
  count = var.create_firestore_database ? 1 : 0

  project     = var.project_id
  name        = var.firestore_database
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"
  # Claims use create() and transactions; pessimistic locking is the native-mode default.
  concurrency_mode                  = "PESSIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  # Idempotency records protect against double orders: never delete them with a terraform destroy.
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.main]
}

locals {
  firestore_database = var.create_firestore_database ? google_firestore_database.main[0].name : var.firestore_database
}

# TTL policy: Firestore deletes an idempotency record some time after its expires_at passes.
resource "google_firestore_field" "runs_ttl" {
  project    = var.project_id
  database   = local.firestore_database
  collection = local.runs_collection
  field      = local.ttl_field

  ttl_config {}

  # A monotonically increasing timestamp makes a write hotspot when indexed; nothing queries it.
  index_config {}

  # With create_firestore_database = false nothing else orders this after the API.
  depends_on = [google_project_service.main]
}

resource "google_firestore_index" "main" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = local.firestore_database
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }

  depends_on = [google_project_service.main]
}

resource "google_bigquery_dataset" "main" {
  count = var.create_bigquery_dataset ? 1 : 0
  #checkov:skip=CKV_GCP_81:Outcome rows carry no credentials or personal data; Google-managed encryption is enough.

  project     = var.project_id
  dataset_id  = local.bq_dataset
  location    = var.bigquery_location
  description = "Outcomes of trading intents and account snapshots."
  # A destroy must never take the trading history with it.
  delete_contents_on_destroy = false

  depends_on = [google_project_service.main]
}

locals {
  bq_dataset_id = var.create_bigquery_dataset ? google_bigquery_dataset.main[0].dataset_id : local.bq_dataset
}

# The schemas are the same JSON files the worker validates its rows against.
resource "google_bigquery_table" "main" {
  for_each = local.bq_tables
  #checkov:skip=CKV_GCP_80:Outcome rows carry no credentials or personal data; Google-managed encryption is enough.

  project             = var.project_id
  dataset_id          = local.bq_dataset_id
  table_id            = each.key
  schema              = jsonencode(jsondecode(file("${local.worker_dir}/${each.value.schema}")))
  deletion_protection = true

  # Partitioned by day and clustered (e.g. bars and quotes by symbol) as names.json says.
  clustering = each.value.clustering

  time_partitioning {
    type  = "DAY"
    field = each.value.partition_field
  }

  depends_on = [google_project_service.main]
}

resource "google_pubsub_topic" "results" {
  count = var.create_results_topic ? 1 : 0
  #checkov:skip=CKV_GCP_83:Outcome events carry no credentials; Google-managed encryption is enough.

  project = var.project_id
  name    = local.results_topic
  # Lets a late subscriber (or a replay by seek) read a week of outcomes.
  message_retention_duration = "604800s"

  depends_on = [google_project_service.main]
}

# Pub/Sub drops messages published to a topic without subscriptions: this pull subscription
# keeps a week of outcomes for whoever consumes them (a strategy, a BigQuery loader, a person).
resource "google_pubsub_subscription" "results_archive" {
  count = var.results_archive_subscription == null ? 0 : 1

  project = var.project_id
  name    = var.results_archive_subscription
  topic   = var.create_results_topic ? google_pubsub_topic.results[0].id : "projects/${var.project_id}/topics/${local.results_topic}"

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_project_service.main]
}
