output "services" {
  description = "Cloud Run service URL per trading mode."
  value       = { for mode, d in module.deployment : mode => d.service_uri }
}

output "intents_topics" {
  description = "Intents topic per trading mode."
  value       = { for mode, d in module.deployment : mode => d.intents_topic }
}

output "dead_letter_subscriptions" {
  description = "Dead-letter pull subscription per trading mode."
  value       = { for mode, d in module.deployment : mode => d.dead_letter_subscription }
}

output "dead_letter_push_subscriptions" {
  description = "Dead-letter push subscription (to the worker's dead-letter route) per trading mode; null with delivery = eventarc."
  value       = { for mode, d in module.deployment : mode => d.dead_letter_push_subscription }
}

output "credentials_secrets" {
  description = "IB credentials secret per trading mode; add a version with gcloud (see README)."
  value       = { for mode, d in module.deployment : mode => d.credentials_secret }
}

output "runtime_service_accounts" {
  description = "Runtime service account per trading mode."
  value       = { for mode, d in module.deployment : mode => d.runtime_service_account }
}

output "results_topic" {
  description = "Shared topic every deployment publishes outcome events to."
  value       = local.results_topic
}

output "results_archive_subscription" {
  description = "Pull subscription holding a week of outcome events, if created."
  value       = var.results_archive_subscription
}

output "image_repository" {
  description = "Docker repository path for the gateway and worker images."
  value       = local.image_repository
}
