# One deployment: one Cloud Run service for one IB login and trading mode.

locals {
  container_port     = 8080
  runtime_account_id = coalesce(var.runtime_account_id, "ib-${var.trading_mode}-runtime")
  runtime_email = (
    var.create_runtime_account
    ? google_service_account.runtime[0].email
    : data.google_service_account.runtime[0].email
  )
  read_only_api = var.trading_mode == "live" && !var.allow_live_trading ? "yes" : "no"

  # Placeholder until Cloud Build deploys the worker image; it answers 200 on /healthz too.
  initial_image = coalesce(var.image, "us-docker.pkg.dev/cloudrun/container/hello")

  # Names as worker/config.py reads them.
  plain_env = merge(var.env, {
    TRADING_MODE       = var.trading_mode
    ALLOW_LIVE_TRADING = tostring(var.allow_live_trading)
    PROJECT_ID         = var.project_id
    RESULTS_TOPIC      = var.results_topic
    FIRESTORE_DATABASE = var.firestore_database
    BQ_DATASET         = var.bigquery_dataset
    DEPLOYMENT         = var.names.service
    # One gthread per request Cloud Run may send at once, plus two: /healthz and /readyz must
    # answer while every request thread waits on an intent, or the liveness probe fails and Cloud
    # Run restarts the container (and its IB session).
    GUNICORN_THREADS = tostring(var.concurrency + 2)
    # The gateway's API is read-only unless this deployment may trade: paper always may; live only
    # with allow_live_trading (the worker's ALLOW_LIVE_TRADING is the second, separate opt-in).
    READ_ONLY_API = local.read_only_api
    }, var.ib_account == null ? {} : {
    IB_ACCOUNT = var.ib_account
  })
}

resource "google_service_account" "runtime" {
  count = var.create_runtime_account ? 1 : 0

  project      = var.project_id
  account_id   = local.runtime_account_id
  display_name = "IB worker runtime (${var.trading_mode})"
  description  = "Identity of Cloud Run service ${var.names.service}: reads its own IB credentials, writes runs, outcomes and rows."
}

data "google_service_account" "runtime" {
  count = var.create_runtime_account ? 0 : 1

  project    = var.project_id
  account_id = local.runtime_account_id
}

resource "google_service_account" "push_invoker" {
  project      = var.project_id
  account_id   = "ib-${var.trading_mode}-push"
  display_name = "Pub/Sub push invoker (${var.trading_mode})"
  description  = "Identity in the OIDC token of pushes to ${var.names.service}; may only invoke that service."
}

# The value is added out of band (see terraform/README.md) so it never enters terraform state.
resource "google_secret_manager_secret" "ib_credentials" {
  project   = var.project_id
  secret_id = "ib-${var.trading_mode}-credentials"

  labels = {
    trading-mode = var.trading_mode
  }

  replication {
    auto {}
  }
}

resource "google_cloud_run_v2_service" "main" {
  project             = var.project_id
  name                = var.names.service
  location            = var.region
  description         = "IB Gateway and intent worker, ${var.trading_mode} trading."
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  # Every request must carry a token of an identity holding run.invoker: no public access.
  invoker_iam_disabled = false

  labels = {
    trading-mode = var.trading_mode
  }

  template {
    service_account = local.runtime_email
    # Longer than the push ack deadline, so Pub/Sub gives up on a request before Cloud Run does.
    timeout                          = "${var.request_timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"

    scaling {
      min_instance_count = var.min_instances
      # One IB login serves one session: a second instance would knock the first one out.
      max_instance_count = 1
    }

    containers {
      name  = "worker"
      image = local.initial_image

      ports {
        container_port = local.container_port
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        # A container running a gateway always has CPU: with CPU only during requests the JVM
        # would log in throttled after a request ended, and deliveries would get 503 until
        # dead-lettered. Billed per instance-second while an instance lives (README, "Cost").
        cpu_idle          = false
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.plain_env
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name = "IB_CREDENTIALS_JSON"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.ib_credentials.secret_id
            version = var.credentials_secret_version
          }
        }
      }

      # /healthz = process alive and serving. Readiness (/readyz: logged in, synced) is checked
      # inside the app, so a live login awaiting its second factor is never killed in a loop.
      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 10
        timeout_seconds       = 5
        failure_threshold     = 24 # 24 x 10 s = 240 s, Cloud Run's maximum
        http_get {
          path = var.names.health_path
          port = local.container_port
        }
      }

      liveness_probe {
        period_seconds    = 30
        timeout_seconds   = 5
        failure_threshold = 3
        http_get {
          path = var.names.health_path
          port = local.container_port
        }
      }
    }
  }

  traffic {
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }

  lifecycle {
    # Cloud Build deploys new image digests with `gcloud run services update`, which also writes
    # its client fields and revision annotations. Terraform must neither roll the image back nor
    # remove what gcloud wrote: either would start a new revision, that is a new IB login (on
    # live, a second-factor prompt). So terraform sets neither template annotations nor labels.
    ignore_changes = [
      template[0].containers[0].image,
      template[0].annotations,
      template[0].labels,
      template[0].revision,
      client,
      client_version,
    ]
  }

  depends_on = [google_secret_manager_secret_iam_member.runtime_reads_credentials]
}
