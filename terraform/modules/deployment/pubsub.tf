resource "google_pubsub_topic" "intents" {
  #checkov:skip=CKV_GCP_83:Intents carry intent names and parameters, never credentials; Google-managed encryption is enough.
  project = var.project_id
  name    = var.names.intents_topic

  labels = {
    trading-mode = var.trading_mode
  }
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Dead letters are intents (no credentials); Google-managed encryption is enough.
  project = var.project_id
  name    = var.names.dead_letter_topic

  labels = {
    trading-mode = var.trading_mode
  }
}

# Pub/Sub drops messages published to a topic without subscriptions: this one keeps dead letters
# for inspection and replay.
resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = var.names.dead_letter_subscription
  topic   = google_pubsub_topic.dead_letter.id

  ack_deadline_seconds       = 60
  message_retention_duration = "2678400s" # 31 days, the maximum
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }

  labels = {
    trading-mode = var.trading_mode
  }
}

resource "google_pubsub_subscription" "push" {
  count = var.delivery == "push" ? 1 : 0

  project = var.project_id
  name    = var.names.intents_push_subscription
  topic   = google_pubsub_topic.intents.id

  # For push this is also the HTTP timeout; a run longer than this is redelivered while it runs,
  # which the worker's idempotency lease covers.
  ack_deadline_seconds       = 600
  message_retention_duration = "604800s"

  push_config {
    # Wrapped envelope (no no_wrapper block): attributes with '_' survive, unlike on the
    # unwrapped path where they arrive as headers that gunicorn drops.
    push_endpoint = "${google_cloud_run_v2_service.main.uri}/"

    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = google_cloud_run_v2_service.main.uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Subscriptions otherwise expire after 31 idle days, e.g. over a long market break.
  expiration_policy {
    ttl = ""
  }

  labels = {
    trading-mode = var.trading_mode
  }

  depends_on = [
    google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters,
    google_cloud_run_v2_service_iam_member.push_invokes_service,
  ]
}

# Dead letters get an outcome: every message the push subscription gives up on is pushed once more,
# to the worker's dead-letter route, which publishes a `failed` outcome (code dead_lettered) for a
# key that has none and acks. The pull subscription above still keeps a copy for inspection.
# Only with delivery = "push": the Eventarc trigger's managed subscription has no dead-letter
# policy, so on that path nothing ever reaches the dead-letter topic.
resource "google_pubsub_subscription" "dead_letter_push" {
  count = var.delivery == "push" ? 1 : 0

  project = var.project_id
  name    = var.names.dead_letter_push_subscription
  topic   = google_pubsub_topic.dead_letter.id

  # The route reads one record and publishes one outcome; it never waits for the IB gateway.
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  push_config {
    # Wrapped envelope, as on the intents subscription: the worker decodes both the same way.
    push_endpoint = "${google_cloud_run_v2_service.main.uri}${var.names.dead_letter_push_path}"

    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = google_cloud_run_v2_service.main.uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  # No dead_letter_policy: its only possible target is this subscription's own topic, a loop.
  # A dead letter the worker cannot settle is retried until retention ends, and the pull
  # subscription keeps it for 31 days either way.

  expiration_policy {
    ttl = ""
  }

  labels = {
    trading-mode = var.trading_mode
  }

  depends_on = [google_cloud_run_v2_service_iam_member.push_invokes_service]
}
