#!/usr/bin/env bash
# Refuse placeholder pins before any build starts: a sha256 or digest of all zeros means
# update-pins.sh has not been run where there is internet. Without this check Cloud Build would
# fail much later with a cryptic "manifest unknown" (the base image digest) or a checksum
# mismatch. build.sh and both Cloud Build configurations run it first.
#   gateway-image/check-pins.sh [VERSIONS_FILE]      exit 0 ok, 78 placeholder, 65 malformed
set -Eeuo pipefail

here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
versions=${1:-${VERSIONS_FILE:-$here/versions.env}}
placeholder=0000000000000000000000000000000000000000000000000000000000000000
[[ -r $versions ]] || { echo "check-pins: $versions is missing" >&2; exit 66; }

status=0
while IFS= read -r line || [[ -n $line ]]; do
	[[ -z $line || $line == \#* ]] && continue
	if [[ ! $line =~ ^[A-Z][A-Z0-9_]*= ]]; then
		echo "check-pins: not a KEY=value line in $versions: $line" >&2
		exit 65
	fi
	if [[ $line == *"$placeholder"* ]]; then
		echo "check-pins: ${line%%=*} is a placeholder: run gateway-image/update-pins.sh first" >&2
		status=78
	fi
done <"$versions"
exit "$status"
