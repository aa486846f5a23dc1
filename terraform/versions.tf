terraform {
  # 1.5 for check blocks and import blocks; optional() object attributes need 1.3.
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Cloud Run v2 invoker_iam_disabled and Firestore field TTL need 6.x; 8.x may break us.
      version = ">= 6.14, < 8.0"
    }
    # google_project_service_identity (the Pub/Sub service agent) exists only in google-beta.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 6.14, < 8.0"
    }
  }
}
