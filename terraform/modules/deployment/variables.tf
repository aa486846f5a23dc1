variable "project_id" {
  description = "Google Cloud project of the deployment."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run service, the scheduler jobs and the Eventarc trigger."
  type        = string
}

variable "trading_mode" {
  description = "IB trading mode of this deployment; names every resource (ib-<mode>...) and is passed to the container."
  type        = string

  validation {
    condition     = contains(["paper", "live"], var.trading_mode)
    error_message = "trading_mode must be paper or live."
  }
}

variable "names" {
  description = "Resource names shared with the worker, already resolved for this trading mode (from worker/names.json)."
  type = object({
    service                       = string
    intents_topic                 = string
    intents_push_subscription     = string
    dead_letter_topic             = string
    dead_letter_subscription      = string
    dead_letter_push_subscription = string
    dead_letter_push_path         = string
    health_path                   = string
  })
}

variable "results_topic" {
  description = "Name of the shared results topic the worker publishes outcomes to."
  type        = string
}

variable "firestore_database" {
  description = "Firestore database id holding idempotency records and trading configuration."
  type        = string
}

variable "bigquery_dataset" {
  description = "BigQuery dataset id the worker writes outcome and account rows to."
  type        = string
}

variable "pubsub_service_agent" {
  description = "IAM member of the project's Pub/Sub service agent (serviceAccount:service-NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com)."
  type        = string
}

variable "image" {
  description = "Initial container image. Cloud Build deploys new digests afterwards; terraform ignores image changes so it does not roll them back. The default placeholder answers 200 on every path."
  type        = string
  default     = null
}

variable "min_instances" {
  description = "Minimum instances: 0 = scale to zero when idle (each cold start logs in again; CPU is always allocated while an instance lives), 1 = warm gateway all month (required for live accounts, whose logins need a second factor)."
  type        = number
  default     = 0

  validation {
    condition     = contains([0, 1], var.min_instances)
    error_message = "min_instances must be 0 or 1: one IB login allows one instance."
  }
}

variable "concurrency" {
  description = "Maximum concurrent requests per instance; the worker gets concurrency + 2 gunicorn threads so health checks never wait behind intents."
  type        = number
  default     = 8

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000 && floor(var.concurrency) == var.concurrency
    error_message = "concurrency must be an integer from 1 to 1000."
  }
}

variable "cpu" {
  description = "vCPUs of the container; the gateway's JVM and the worker share them."
  type        = string
  default     = "2"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.cpu)
    error_message = "cpu must be one of 1, 2, 4, 6, 8."
  }
}

variable "memory" {
  description = "Memory of the container (Kubernetes quantity, e.g. 2Gi); the gateway's JVM needs at least 1 GiB."
  type        = string
  default     = "2Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.memory))
    error_message = "memory must be a quantity in Mi or Gi, e.g. 2Gi."
  }
}

variable "request_timeout_seconds" {
  description = "Cloud Run request timeout; at least the push subscription's 600 s ack deadline so a run is never cut off first."
  type        = number
  default     = 900

  validation {
    condition     = var.request_timeout_seconds >= 600 && var.request_timeout_seconds <= 3600
    error_message = "request_timeout_seconds must be from 600 (the ack deadline) to 3600 (Cloud Run's maximum)."
  }
}

variable "ingress" {
  description = "Cloud Run ingress. IAM is enforced either way; INGRESS_TRAFFIC_INTERNAL_ONLY also blocks direct calls from outside the project's networks."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "deletion_protection" {
  description = "Refuse to destroy the Cloud Run service from terraform."
  type        = bool
  default     = true
}

variable "allow_live_trading" {
  description = "Lets a live deployment place orders: sets the worker's ALLOW_LIVE_TRADING and the gateway's READ_ONLY_API=no (yes otherwise). Leave false until the live deployment has been checked."
  type        = bool
  default     = false
}

variable "ib_account" {
  description = "IB account id this deployment serves (env IB_ACCOUNT); deliveries for other accounts are acked without a run. Null = the login's only account."
  type        = string
  default     = null
}

variable "env" {
  description = "Extra plain environment variables for the container (no secrets: use Secret Manager)."
  type        = map(string)
  default     = {}

  validation {
    # Credentials come only from the secret; a second source is also an error at container start.
    condition     = !anytrue([for name in keys(var.env) : can(regex("^(IB|TWS)_(CREDENTIALS|USERNAME|USERID|PASSWORD)", name))])
    error_message = "env must not carry IB credentials (IB_*/TWS_* username, userid, password, credentials): they come from the Secret Manager secret."
  }
}

variable "create_runtime_account" {
  description = "Create the runtime service account. False reuses an existing one (e.g. ib-trading from the earlier system)."
  type        = bool
  default     = true
}

variable "runtime_account_id" {
  description = "Account id of the runtime service account. Null = ib-<mode>-runtime. Set ib-trading (with create_runtime_account = false) to keep the earlier system's account."
  type        = string
  default     = null
}

variable "credentials_secret_version" {
  description = "Version of the IB credentials secret mounted as IB_CREDENTIALS_JSON; latest is read when an instance starts."
  type        = string
  default     = "latest"
}

variable "delivery" {
  description = "How intents reach the service: push (project-defined push subscription with 600 s ack deadline and dead-letter policy) or eventarc (Eventarc trigger; 10 s ack deadline, suits short intents and fan-in)."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "eventarc"], var.delivery)
    error_message = "delivery must be push or eventarc."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before the push subscription moves it to the dead-letter topic."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be from 5 to 100 (Pub/Sub's limits)."
  }
}

variable "schedules" {
  description = <<-EOT
    Cloud Scheduler jobs publishing intents to this deployment's intents topic, keyed by job name.
    data is the envelope {"intent": ..., "params": {...}}; params come as a JSON object string
    (params_json) because the jobs' params differ in shape and one map needs one element type.
    Attributes carry dedupe_window (seconds: a scheduler retry within the window is the same run)
    and optionally account and dry_run.
    Cron knows no market holidays: the worker checks the exchange calendar.
  EOT
  type = map(object({
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
  }))
  default = {}

  validation {
    condition     = alltrue([for job in values(var.schedules) : job.dedupe_window >= 1 && floor(job.dedupe_window) == job.dedupe_window])
    error_message = "Every schedule's dedupe_window must be a whole number of seconds, at least 1."
  }

  validation {
    condition     = alltrue([for job in values(var.schedules) : can(keys(jsondecode(job.params_json)))])
    error_message = "Every schedule's params_json must be a JSON object string, e.g. \"{}\"."
  }

  validation {
    condition     = alltrue([for job in values(var.schedules) : job.retry_count >= 0 && job.retry_count <= 5])
    error_message = "Every schedule's retry_count must be from 0 to 5 (Cloud Scheduler's limit)."
  }

  validation {
    condition     = alltrue([for name, job in var.schedules : can(regex("^[a-z0-9-]{1,40}$", name)) && length(job.intent) <= 256])
    error_message = "Schedule keys must be 1-40 lowercase letters, digits or hyphens, and intent names at most 256 bytes."
  }
}
