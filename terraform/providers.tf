provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app        = "ib-cloudrun"
    managed-by = "terraform"
  }
}

provider "google-beta" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app        = "ib-cloudrun"
    managed-by = "terraform"
  }
}
