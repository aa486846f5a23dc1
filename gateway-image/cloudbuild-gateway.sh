#!/usr/bin/env bash
# Make sure the gateway image for this tree's gateway inputs exists in the registry, building and
# pushing it only when it does not, and print it by digest. The worker build runs this as a step
# before building on the result, so the worker never races a gateway build and a gateway-only
# change reaches Cloud Run with the next worker build.
#   gateway-image/cloudbuild-gateway.sh IMAGE CHANNEL [VERSIONS_FILE] [REVISION] > gateway.ref
# The tag is CHANNEL-<key>, the key a hash of every file under gateway-image/ (except *.md) and of
# the versions file: the same inputs always name the same image. CHANNEL is moved to it as well.
set -Eeuo pipefail

here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
image=${1:?usage: cloudbuild-gateway.sh IMAGE CHANNEL [VERSIONS_FILE] [REVISION]}
channel=${2:?usage: cloudbuild-gateway.sh IMAGE CHANNEL [VERSIONS_FILE] [REVISION]}
versions=${3:-$here/versions.env}
revision=${4:-unknown}
log() { printf 'cloudbuild-gateway: %s\n' "$*" >&2; }

[[ $channel == stable || $channel == latest ]] || { log "CHANNEL must be stable or latest"; exit 64; }
"$here/check-pins.sh" "$versions"

# gateway_key : 16 hex digits naming this tree's gateway inputs (file names and contents).
gateway_key() {
	{
		(cd -- "$here" && find . -type f ! -name '*.md' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		sha256sum <"$versions"
	} | sha256sum | cut -c1-16
}

tag="$image:$channel-$(gateway_key)"
if docker manifest inspect "$tag" >/dev/null 2>&1; then
	log "reusing $tag (no gateway input changed)"
	docker pull --quiet "$tag" >/dev/null
else
	log "building $tag"
	args=()
	while IFS= read -r line || [[ -n $line ]]; do
		[[ -z $line || $line == \#* ]] && continue
		args+=(--build-arg "$line")
	done <"$versions"
	docker build "${args[@]}" --build-arg "IB_GATEWAY_CHANNEL=$channel" \
		--label "org.opencontainers.image.revision=$revision" \
		--tag "$tag" --tag "$image:$channel" "$here" >&2
	docker push "$tag" >&2
	docker push "$image:$channel" >&2
fi
ref=$(docker inspect --format '{{index .RepoDigests 0}}' "$tag")
[[ $ref == "$image"@sha256:* ]] || { log "no registry digest for $tag (got '$ref')"; exit 70; }
printf '%s\n' "$ref"
