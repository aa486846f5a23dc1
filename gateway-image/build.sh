#!/usr/bin/env bash
# Build the gateway image (or, with --worker GATEWAY_IMAGE@sha256:..., the worker image)
# with every pin from versions.env passed as a build arg. Refuses placeholder pins.
#   gateway-image/build.sh TAG
#   gateway-image/build.sh --worker GATEWAY_IMAGE@sha256:... TAG   (run from the repo root)
set -Eeuo pipefail

here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
versions=${VERSIONS_FILE:-$here/versions.env}
args=()
while IFS= read -r line || [[ -n $line ]]; do
	[[ -z $line || $line == \#* ]] && continue
	if [[ $line == *=*0000000000000000000000000000000000000000000000000000000000000000* ]]; then
		echo "build.sh: ${line%%=*} is a placeholder: run gateway-image/update-pins.sh first" >&2
		exit 78
	fi
	args+=(--build-arg "$line")
done <"$versions"

if [[ ${1:-} == --worker ]]; then
	gateway=${2:?usage: build.sh --worker GATEWAY_IMAGE@sha256:... TAG}
	[[ $gateway == *@sha256:* ]] || { echo "build.sh: the gateway image must be given by digest" >&2; exit 64; }
	exec docker build -f "$here/../worker-image/Dockerfile" --build-arg "GATEWAY_IMAGE=$gateway" \
		"${args[@]}" -t "${3:?usage: build.sh --worker GATEWAY_IMAGE@sha256:... TAG}" "$here/.."
fi
exec docker build "${args[@]}" -t "${1:?usage: build.sh TAG}" "$here"
