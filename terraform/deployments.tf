# Paper and live are two instances of one module and never share topics, accounts or secrets.
module "deployment" {
  source   = "./modules/deployment"
  for_each = var.deployments

  project_id   = var.project_id
  region       = var.region
  trading_mode = each.key

  names = {
    service                       = replace(local.names.cloud_run.service, "{mode}", each.key)
    intents_topic                 = replace(local.names.pubsub.intents_topic, "{mode}", each.key)
    intents_push_subscription     = replace(local.names.pubsub.intents_push_subscription, "{mode}", each.key)
    dead_letter_topic             = replace(local.names.pubsub.dead_letter_topic, "{mode}", each.key)
    dead_letter_subscription      = replace(local.names.pubsub.dead_letter_subscription, "{mode}", each.key)
    dead_letter_push_subscription = replace(local.names.pubsub.dead_letter_push_subscription, "{mode}", each.key)
    dead_letter_push_path         = local.names.pubsub.dead_letter_push_path
    health_path                   = local.names.cloud_run.health_path
  }

  results_topic        = var.create_results_topic ? google_pubsub_topic.results[0].name : local.results_topic
  firestore_database   = local.firestore_database
  bigquery_dataset     = local.bq_dataset_id
  pubsub_service_agent = local.pubsub_service_agent

  image                      = each.value.image
  min_instances              = each.value.min_instances
  concurrency                = each.value.concurrency
  cpu                        = each.value.cpu
  memory                     = each.value.memory
  request_timeout_seconds    = each.value.request_timeout_seconds
  ingress                    = each.value.ingress
  deletion_protection        = each.value.deletion_protection
  ib_account                 = each.value.ib_account
  allow_live_trading         = each.value.allow_live_trading
  env                        = each.value.env
  create_runtime_account     = each.value.create_runtime_account
  runtime_account_id         = each.value.runtime_account_id
  credentials_secret_version = each.value.credentials_secret_version
  delivery                   = each.value.delivery
  max_delivery_attempts      = each.value.max_delivery_attempts
  schedules                  = each.value.schedules

  depends_on = [google_project_service.main]
}

# A live login needs a second factor at every cold start: warn when live may scale to zero.
check "live_stays_warm" {
  assert {
    condition     = !contains(keys(var.deployments), "live") || try(var.deployments["live"].min_instances, 0) >= 1
    error_message = "deployments.live.min_instances is 0: every cold start of ib-live waits for IBKR Mobile approval. Set it to 1."
  }
}
