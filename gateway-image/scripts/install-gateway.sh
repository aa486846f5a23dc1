#!/usr/bin/env bash
# Build-time installer (the Dockerfile's download stage runs it): fetch IB Gateway for the
# chosen channel and IBC, verify each against its pinned sha256 BEFORE using it, install
# the gateway where IBC looks for it, and unpack IBC.
#
# Environment (build args, values in gateway-image/versions.env):
#   IB_GATEWAY_CHANNEL               stable | latest
#   IB_GATEWAY_<CHANNEL>_VERSION     e.g. 10.37.1l
#   IB_GATEWAY_<CHANNEL>_URL         installer address
#   IB_GATEWAY_<CHANNEL>_SHA256      its sha256
#   IBC_VERSION, IBC_URL, IBC_SHA256
#   TWS_PATH (gateway goes to $TWS_PATH/ibgateway/<major>), IBC_PATH, TWS_INSTALL_LOG
#   GATEWAY_JRE  where the JRE the installer chose is copied to (the runtime stage copies it)
set -Eeuo pipefail

LOG_TAG=install-gateway
SCRIPTS=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
# shellcheck source=gateway-image/scripts/proc-lib.sh
source "$SCRIPTS/proc-lib.sh"
# shellcheck source=gateway-image/scripts/gateway-lib.sh
source "$SCRIPTS/gateway-lib.sh"

PLACEHOLDER_SHA256=0000000000000000000000000000000000000000000000000000000000000000

# require NAME... : fail unless every NAME is set and non-empty.
require() {
	local name
	for name in "$@"; do
		[[ -n ${!name:-} ]] || die "build arg $name is not set (values live in gateway-image/versions.env)"
	done
}

# fetch URL SHA256 DEST : download URL to DEST and verify it; DEST is removed on mismatch.
fetch() {
	local url=$1 sum=$2 dest=$3
	[[ $sum =~ ^[0-9a-f]{64}$ ]] || die "sha256 for $url must be 64 lower-case hex digits"
	[[ $sum != "$PLACEHOLDER_SHA256" ]] ||
		die "the sha256 for $url is a placeholder: run gateway-image/update-pins.sh where there is internet"
	log "downloading $url"
	curl --fail --silent --show-error --location --retry 3 --proto '=https,file' --output "$dest" "$url"
	if ! printf '%s  %s\n' "$sum" "$dest" | sha256sum --check --strict --status; then
		rm -f -- "$dest"
		die "sha256 mismatch for $url: expected $sum (the file moved or was tampered with)" 65
	fi
	log "verified $dest ($sum)"
}

# relocate_jre GATEWAY_DIR : copy the JRE the installer chose to $GATEWAY_JRE and point the
# installer's jre cfg there. install4j records the JRE it unpacked in .install4j/inst_jre.cfg
# (and pref_jre.cfg), which IBC reads to find java: 10.45 (stable) unpacks it under
# /usr/local/i4j_jres, 10.48+ (latest) under the installer's temporary directory. Neither is
# copied into the runtime stage, so without this IBC stops with "Can't find suitable Java
# installation". The build fails here unless the copied java runs.
relocate_jre() {
	local dir=$1 cfg jre=''
	cfg=$dir/.install4j/inst_jre.cfg
	if [[ -r $cfg ]]; then
		IFS= read -r jre <"$cfg" || true
	elif [[ -x $dir/jre/bin/java ]]; then
		jre=$dir/jre
	fi
	jre=${jre%/}
	[[ -n $jre && -x $jre/bin/java ]] ||
		die "the installer recorded no usable JRE (${cfg}: '${jre}'); IBC would find no java" 70
	if [[ $(readlink -f -- "$jre") != "$(readlink -f -- "$GATEWAY_JRE" 2>/dev/null || true)" ]]; then
		rm -rf -- "$GATEWAY_JRE"
		mkdir -p -- "$(dirname -- "$GATEWAY_JRE")"
		cp -a -- "$jre" "$GATEWAY_JRE"
	fi
	local name
	for name in inst_jre.cfg pref_jre.cfg; do
		if [[ $name == inst_jre.cfg || -e $dir/.install4j/$name ]]; then
			mkdir -p -- "$dir/.install4j"
			printf '%s\n' "$GATEWAY_JRE" >"$dir/.install4j/$name"
		fi
	done
	"$GATEWAY_JRE/bin/java" -version >>"$TWS_INSTALL_LOG" 2>&1 ||
		die "the JRE copied to $GATEWAY_JRE does not run (java -version failed; see $TWS_INSTALL_LOG)" 70
	log "JRE from $jre copied to $GATEWAY_JRE; $cfg points there"
}

install_gateway() {
	local channel=${IB_GATEWAY_CHANNEL,,} prefix version major installer work
	[[ $channel == stable || $channel == latest ]] ||
		die "IB_GATEWAY_CHANNEL must be stable or latest (got '${IB_GATEWAY_CHANNEL}')"
	prefix=IB_GATEWAY_${channel^^}
	require "${prefix}_VERSION" "${prefix}_URL" "${prefix}_SHA256"
	version=${prefix}_VERSION
	version=${!version}
	major=$(ibgw_major_version "$version") || die "${prefix}_VERSION is not a gateway version: $version"
	work=$(mktemp -d)
	installer=$work/ibgateway-installer.sh
	local url=${prefix}_URL sum=${prefix}_SHA256
	fetch "${!url}" "${!sum}" "$installer"
	mkdir -p -- "$(dirname -- "$TWS_INSTALL_LOG")"
	# The first line keeps TWS_INSTALL_LOG parseable by tools that read the version from it.
	printf 'IB Gateway %s (%s channel)\n' "$version" "$channel" >"$TWS_INSTALL_LOG"
	# The installer unpacks into TMPDIR: keep that inside $work, removed once the JRE is copied.
	TMPDIR=$work sh "$installer" -q -dir "$TWS_PATH/ibgateway/$major" >>"$TWS_INSTALL_LOG" 2>&1
	[[ -d $TWS_PATH/ibgateway/$major/jars ]] || die "the installer did not create $TWS_PATH/ibgateway/$major/jars"
	relocate_jre "$TWS_PATH/ibgateway/$major"
	rm -rf -- "$work"
	printf '%s\n' "$version" >"$TWS_PATH/ibgateway/version"
	log "installed IB Gateway $version ($channel) in $TWS_PATH/ibgateway/$major"
}

install_ibc() {
	local zip
	require IBC_VERSION IBC_URL IBC_SHA256
	zip=$(mktemp -d)/ibc.zip
	fetch "$IBC_URL" "$IBC_SHA256" "$zip"
	mkdir -p -- "$IBC_PATH"
	unzip -q -o "$zip" -d "$IBC_PATH"
	rm -rf -- "$(dirname -- "$zip")"
	[[ -f $IBC_PATH/scripts/ibcstart.sh ]] || die "IBC archive has no scripts/ibcstart.sh"
	find "$IBC_PATH" -name "*.sh" -exec chmod a+rx {} +
	log "installed IBC $IBC_VERSION in $IBC_PATH"
}

require IB_GATEWAY_CHANNEL TWS_PATH IBC_PATH TWS_INSTALL_LOG GATEWAY_JRE
install_gateway
install_ibc
