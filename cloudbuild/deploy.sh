#!/usr/bin/env bash
# Deploy one worker image digest to the Cloud Run service ib-MODE, then tag that digest MODE in
# the registry, so the next stage (live) can deploy exactly the digest this one ran.
#   cloudbuild/deploy.sh MODE REGION IMAGE@sha256:...
# Only the image changes: every other setting of the service is terraform's, and terraform ignores
# the image and the revision annotations gcloud writes (terraform/modules/deployment/main.tf), so
# a later `terraform apply` neither rolls this back nor starts another revision (another login).
set -Eeuo pipefail

mode=${1:?usage: deploy.sh MODE REGION IMAGE@sha256:...}
region=${2:?usage: deploy.sh MODE REGION IMAGE@sha256:...}
ref=${3:?usage: deploy.sh MODE REGION IMAGE@sha256:...}
[[ $mode == paper || $mode == live ]] || { echo "deploy.sh: MODE must be paper or live" >&2; exit 64; }
[[ $ref =~ ^[a-z0-9.-]+-docker\.pkg\.dev/[^@]+/ib-worker@sha256:[0-9a-f]{64}$ ]] ||
	{ echo "deploy.sh: the image must be ib-worker given by digest, got '$ref'" >&2; exit 64; }

# `services update` returns once the new revision is ready (its startup probe passed) and
# serving, or fails the build.
gcloud run services update "ib-$mode" --region="$region" --image="$ref" --quiet
gcloud artifacts docker tags add "$ref" "${ref%@*}:$mode" --quiet
echo "deployed $ref to ib-$mode"
