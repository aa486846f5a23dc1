output "service_name" {
  description = "Cloud Run service name (ib-<mode>)."
  value       = google_cloud_run_v2_service.main.name
}

output "service_uri" {
  description = "HTTPS URL of the Cloud Run service; also the audience of the push OIDC token."
  value       = google_cloud_run_v2_service.main.uri
}

output "intents_topic" {
  description = "Topic that intents for this deployment are published to."
  value       = google_pubsub_topic.intents.name
}

output "dead_letter_subscription" {
  description = "Pull subscription holding intents that exhausted their delivery attempts."
  value       = google_pubsub_subscription.dead_letter.name
}

output "dead_letter_push_subscription" {
  description = "Push subscription delivering dead letters to the worker's dead-letter route (null with delivery = eventarc)."
  value       = one(google_pubsub_subscription.dead_letter_push[*].name)
}

output "runtime_service_account" {
  description = "Email of the service account the container runs as."
  value       = local.runtime_email
}

output "push_service_account" {
  description = "Email of the identity in push (or Eventarc) OIDC tokens."
  value       = google_service_account.push_invoker.email
}

output "credentials_secret" {
  description = "Secret Manager secret id for the IB credentials JSON; add its value out of band."
  value       = google_secret_manager_secret.ib_credentials.secret_id
}
