#!/usr/bin/env bash
# Recompute every pin in versions.env on a machine with internet access and Docker:
#   - IB Gateway, per channel: the version IB publishes for the channel, and the sha256 of
#     the installer downloaded from the channel address (version read before and after the
#     download; if IB moved the channel in between, run again);
#   - IBC: the latest release (or IBC_VERSION=x.y.z in the environment), its address and the
#     sha256 of the zip, checked against the .sha256 file the release publishes;
#   - the base image digest (docker buildx imagetools inspect).
# Debian packages are listed by name only (see versions.env), so there is nothing to pin there.
# Usage: gateway-image/update-pins.sh [VERSIONS_FILE]; review the diff, then build.
set -Eeuo pipefail

here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
versions=${1:-$here/versions.env}
ib_base=https://download2.interactivebrokers.com/installers
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

get() { curl --fail --silent --show-error --location --retry 3 "$@"; }

# pin KEY VALUE : replace the KEY= line of the versions file.
pin() {
	local key=$1 value=$2 line out=()
	while IFS= read -r line || [[ -n $line ]]; do
		if [[ $line == "$key="* ]]; then line="$key=$value"; fi
		out+=("$line")
	done <"$versions"
	printf '%s\n' "${out[@]}" >"$versions"
	printf 'update-pins: %s=%s\n' "$key" "$value" >&2
}

current() { sed -n "s/^$1=//p" "$versions"; }

# ib_version CHANNEL : the build version IB publishes for a channel (a JSONP document).
ib_version() {
	get "$ib_base/tws/$1-standalone/version.json" | sed 's/^[^(]*(//; s/);*[[:space:]]*$//' |
		jq -r .buildVersion
}

pin_gateway() {
	local channel=$1 upper=${1^^} url before after
	url="$ib_base/ibgateway/$channel-standalone/ibgateway-$channel-standalone-linux-x64.sh"
	before=$(ib_version "$channel")
	get --output "$work/gw-$channel.sh" "$url"
	after=$(ib_version "$channel")
	[[ $before == "$after" ]] || { echo "IB moved $channel during the download; run again" >&2; exit 75; }
	pin "IB_GATEWAY_${upper}_VERSION" "$after"
	pin "IB_GATEWAY_${upper}_URL" "$url"
	pin "IB_GATEWAY_${upper}_SHA256" "$(sha256sum "$work/gw-$channel.sh" | cut -d' ' -f1)"
}

pin_ibc() {
	local version=${IBC_VERSION:-} url sum published
	if [[ -z $version ]]; then
		version=$(get https://api.github.com/repos/IbcAlpha/IBC/releases/latest | jq -r .tag_name)
	fi
	url="https://github.com/IbcAlpha/IBC/releases/download/$version/IBCLinux-$version.zip"
	get --output "$work/ibc.zip" "$url"
	sum=$(sha256sum "$work/ibc.zip" | cut -d' ' -f1)
	if published=$(get "$url.sha256" 2>/dev/null); then
		[[ ${published,,} == *"$sum"* ]] || { echo "IBC $version: sha256 differs from the published one" >&2; exit 65; }
	fi
	pin IBC_VERSION "$version"
	pin IBC_URL "$url"
	pin IBC_SHA256 "$sum"
}

pin_base() {
	local image digest
	image=$(current BASE_IMAGE)
	digest=$(docker buildx imagetools inspect "$image" --format '{{json .Manifest}}' | jq -r .digest)
	pin BASE_IMAGE_DIGEST "$digest"
}

pin_gateway stable
pin_gateway latest
pin_ibc
pin_base
echo "update-pins: done; review 'git diff $versions', then build and test the image" >&2
