#!/usr/bin/env bash
# Build the gateway image, or with --worker the worker image on a gateway image given by digest,
# with every pin from versions.env passed as a build arg. Refuses placeholder pins first.
#   gateway-image/build.sh TAG
#   gateway-image/build.sh --worker GATEWAY_IMAGE@sha256:... TAG
# The worker build first makes dist/*.whl with worker-image/build-wheel.sh (the worker only).
set -Eeuo pipefail

here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
repo=$(dirname -- "$here")
versions=${VERSIONS_FILE:-$here/versions.env}
"$here/check-pins.sh" "$versions"
args=()
while IFS= read -r line || [[ -n $line ]]; do
	[[ -z $line || $line == \#* ]] && continue
	args+=(--build-arg "$line")
done <"$versions"

if [[ ${1:-} == --worker ]]; then
	gateway=${2:?usage: build.sh --worker GATEWAY_IMAGE@sha256:... TAG}
	tag=${3:?usage: build.sh --worker GATEWAY_IMAGE@sha256:... TAG}
	[[ $gateway == *@sha256:* ]] || { echo "build.sh: the gateway image must be given by digest" >&2; exit 64; }
	"$repo/worker-image/build-wheel.sh" "$repo/dist" >/dev/null
	exec docker build -f "$repo/worker-image/Dockerfile" --build-arg "GATEWAY_IMAGE=$gateway" \
		"${args[@]}" -t "$tag" "$repo"
fi
exec docker build "${args[@]}" -t "${1:?usage: build.sh TAG}" "$here"
