# Variant: Eventarc delivers the intents topic as CloudEvents instead of the push subscription.
# Its managed subscription keeps a 10 s ack deadline and no dead-letter policy, so it suits short
# intents and fan-in; order-placing intents should stay on the push subscription.
resource "google_eventarc_trigger" "intents" {
  count = var.delivery == "eventarc" ? 1 : 0

  project         = var.project_id
  location        = var.region
  name            = "${var.names.service}-intents"
  service_account = google_service_account.push_invoker.email

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.pubsub.topic.v1.messagePublished"
  }

  transport {
    pubsub {
      topic = google_pubsub_topic.intents.id
    }
  }

  destination {
    cloud_run_service {
      service = google_cloud_run_v2_service.main.name
      region  = var.region
      path    = "/"
    }
  }

  labels = {
    trading-mode = var.trading_mode
  }

  depends_on = [google_cloud_run_v2_service_iam_member.push_invokes_service]
}
