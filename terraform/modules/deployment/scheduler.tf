# Cloud Scheduler publishes static data and attributes, so its retry arrives with a new messageId:
# dedupe_window lets the worker derive the same idempotency key for every attempt in a window.
# Pub/Sub targets publish as the Cloud Scheduler service agent, so no account is attached here.
resource "google_cloud_scheduler_job" "intent" {
  for_each = var.schedules

  project     = var.project_id
  region      = var.region
  name        = "${var.names.service}-${each.key}"
  description = coalesce(each.value.description, "Publishes intent ${each.value.intent} to ${var.names.intents_topic}.")
  schedule    = each.value.schedule
  time_zone   = each.value.time_zone
  paused      = each.value.paused

  retry_config {
    retry_count = each.value.retry_count
  }

  pubsub_target {
    topic_name = google_pubsub_topic.intents.id
    data = base64encode(jsonencode({
      intent = each.value.intent
      params = jsondecode(each.value.params_json)
    }))
    attributes = merge(
      { dedupe_window = tostring(each.value.dedupe_window) },
      each.value.account == null ? {} : { account = each.value.account },
      each.value.dry_run == null ? {} : { dry_run = tostring(each.value.dry_run) },
    )
  }
}
