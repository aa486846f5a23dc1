variable "project_id" {
  description = "Google Cloud project that hosts every resource of this root."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 characters: lowercase letters, digits, hyphens), not a project name or number."
  }
}

variable "region" {
  description = "Region for Cloud Run, Artifact Registry, Cloud Scheduler, Eventarc and Cloud Build triggers. us-east4 is closest to IB's US servers."
  type        = string
  default     = "us-east4"
}

variable "names_file" {
  description = "Path to worker/names.json, the one file that defines the names code and terraform share. Null means the copy in this repository."
  type        = string
  default     = null
}

variable "enable_apis" {
  description = "Enable the Google APIs this system uses. Turn off when a platform team manages project services."
  type        = bool
  default     = true
}

variable "create_artifact_registry_repository" {
  description = "Create the Docker repository cloud-run-repo. Set false (or import it) when the project already has it."
  type        = bool
  default     = true
}

variable "artifact_registry_repository_id" {
  description = "Artifact Registry Docker repository for the gateway and worker images."
  type        = string
  default     = "cloud-run-repo"
}

variable "create_firestore_database" {
  description = "Create the Firestore database. Set false (or import it) when the project already has one; the TTL policy and indexes are created either way."
  type        = bool
  default     = true
}

variable "firestore_database" {
  description = "Firestore database id that holds the idempotency records and the trading configuration."
  type        = string
  default     = "(default)"
}

variable "firestore_location" {
  description = "Firestore location (multi-region such as nam5, or a region). Immutable once the database exists."
  type        = string
  default     = "nam5"
}

variable "create_bigquery_dataset" {
  description = "Create the BigQuery dataset. Set false (or import it) when the project already has it; the tables are created either way."
  type        = bool
  default     = true
}

variable "bigquery_location" {
  description = "BigQuery dataset location."
  type        = string
  default     = "US"
}

variable "create_results_topic" {
  description = "Create the shared results topic. Set false (or import it) when the project already has it."
  type        = bool
  default     = true
}

variable "results_archive_subscription" {
  description = "Pull subscription on the results topic that keeps a week of outcome events (a topic without subscriptions drops them). Null = none."
  type        = string
  default     = "ib-intent-results-archive"
}

variable "deployments" {
  description = <<-EOT
    One entry per Cloud Run deployment, keyed by trading mode (paper, live). Each gets its own
    service ib-<mode>, intents topic, push subscription, dead-letter topic, runtime account and
    credentials secret. Attributes are passed to modules/deployment; see its variables for meaning.
  EOT
  type = map(object({
    image                      = optional(string)
    min_instances              = optional(number, 0)
    concurrency                = optional(number, 8)
    cpu                        = optional(string, "2")
    memory                     = optional(string, "2Gi")
    request_timeout_seconds    = optional(number, 900)
    ib_account                 = optional(string)
    allow_live_trading         = optional(bool, false)
    create_runtime_account     = optional(bool, true)
    runtime_account_id         = optional(string)
    delivery                   = optional(string, "push")
    max_delivery_attempts      = optional(number, 10)
    ingress                    = optional(string, "INGRESS_TRAFFIC_ALL")
    deletion_protection        = optional(bool, true)
    env                        = optional(map(string), {})
    deploy_requires_approval   = optional(bool, false)
    credentials_secret_version = optional(string, "latest")
    schedules = optional(map(object({
      schedule      = string
      intent        = string
      params_json   = optional(string, "{}")
      dedupe_window = number
      account       = optional(string)
      dry_run       = optional(bool)
      time_zone     = optional(string, "America/New_York")
      paused        = optional(bool, false)
      retry_count   = optional(number, 3)
      description   = optional(string)
    })), {})
  }))
  default = {
    paper = {}
  }

  validation {
    condition     = length(var.deployments) > 0 && alltrue([for mode in keys(var.deployments) : contains(["paper", "live"], mode)])
    error_message = "deployments must have at least one key, and keys must be trading modes: paper or live."
  }
}

variable "cloudbuild" {
  description = <<-EOT
    Cloud Build triggers (cloudbuild.tf). Disabled by default: a trigger can only be created once
    the GitHub repository is connected to Cloud Build (README, "First deploy"). ib-worker-build
    runs on every push to `branch` (a regex) and deploys paper; ib-worker-deploy-live (and
    ib-worker-deploy-paper when paper sets deploy_requires_approval) is run by hand from
    `deploy_branch` and waits for approval right before it deploys.
  EOT
  type = object({
    enabled         = optional(bool, false)
    location        = optional(string, "global")
    github_owner    = optional(string)
    github_repo     = optional(string)
    branch          = optional(string, "^main$")
    deploy_branch   = optional(string, "main")
    gateway_channel = optional(string, "stable")
  })
  default = {}

  validation {
    condition     = !var.cloudbuild.enabled || (var.cloudbuild.github_owner != null && var.cloudbuild.github_repo != null)
    error_message = "cloudbuild.enabled needs cloudbuild.github_owner and cloudbuild.github_repo."
  }

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.cloudbuild.deploy_branch))
    error_message = "cloudbuild.deploy_branch must be a branch name (not a regex), e.g. main."
  }

  validation {
    condition     = contains(["stable", "latest"], var.cloudbuild.gateway_channel)
    error_message = "cloudbuild.gateway_channel must be stable or latest (the IB Gateway release channels)."
  }
}
