#!/usr/bin/env bash
# Start IB Gateway under IBC, unattended: validate the environment, render IBC's config.ini
# (mode 600) and jts.ini, set the Java heap, wait for this deployment's login lease (with
# LOGIN_LEASE=firestore), start Xvfb, then run IBC's launcher script and stay until it exits.
# Exit status: IBC's launcher's; 78 for a bad setting; 75 when the login lease was lost or its
# holder failed; 0 after a requested stop (SIGTERM/SIGINT). Variables: gateway-image/README.md.
set -Eeuo pipefail

LOG_TAG=start-gateway
SCRIPTS=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
CONFIG_DIR=${IBGW_CONFIG_DIR:-$SCRIPTS/../config}
# shellcheck source=gateway-image/scripts/proc-lib.sh
source "$SCRIPTS/proc-lib.sh"
# shellcheck source=gateway-image/scripts/gateway-lib.sh
source "$SCRIPTS/gateway-lib.sh"
# shellcheck source=gateway-image/scripts/credentials.sh
source "$SCRIPTS/credentials.sh"

# Placeholders the IBC config template may use (anything else in it is an error).
IBC_TEMPLATE_VARS=(
	IBGW_USER IBGW_PASS TRADING_MODE TWOFA_DEVICE TWOFA_TIMEOUT RELOGIN_AFTER_TWOFA_TIMEOUT
	TWOFA_EXIT_INTERVAL EXISTING_SESSION_DETECTED_ACTION TWS_ACCEPT_INCOMING API_PORT_OVERRIDE
	TWS_MASTER_CLIENT_ID READ_ONLY_API BYPASS_WARNING ALLOW_BLIND_TRADING AUTO_RESTART_TIME
	TWS_COLD_RESTART IBC_COMMAND_SERVER_PORT
)
# How long IBC's launcher and the gateway get to stop before SIGKILL. With Xvfb's 0.3 s
# this stays within the entrypoint's GATEWAY_STOP_TIMEOUT (1.8 s), which follows the
# worker's 8 s inside Cloud Run's 10 s.
IBC_STOP_TIMEOUT=${IBC_STOP_TIMEOUT:-1.2}
# The lease holder releases within this after the gateway stopped (one Firestore write); if it
# cannot, the lease expires after its TTL and the next instance waits that long instead.
LEASE_RELEASE_TIMEOUT=${LEASE_RELEASE_TIMEOUT:-0.3}
LOGIN_LEASE=${LOGIN_LEASE:-off}
EX_LEASE=75
ibc_pid='' ibc_status=0 xvfb_pid='' run_dir='' lease_pid='' lease_fd='' IBGW_PARTIAL_CONFIG=''

# shellcheck disable=SC2329  # run by the EXIT trap
cleanup() {
	if [[ -n $IBGW_PARTIAL_CONFIG ]]; then rm -f -- "$IBGW_PARTIAL_CONFIG"; fi
	release_login_lease
	if [[ -n $xvfb_pid ]]; then stop_child "$xvfb_pid" "$xvfb_pid" 0.3 || true; fi
	if [[ -n $run_dir ]]; then rm -rf -- "$run_dir"; fi
}

# shellcheck disable=SC2329  # run by the TERM/INT trap
on_signal() {
	trap '' TERM INT
	log "stop requested: stopping IBC and the gateway"
	local status=0
	if [[ -n $ibc_pid ]]; then
		# IBC's launcher runs in its own process group (setsid): signal it and java together.
		stop_child "$ibc_pid" "-$ibc_pid" "$IBC_STOP_TIMEOUT" || status=$?
		log "IBC's launcher exited with status $status"
	fi
	release_login_lease
	exit 0
}

# release_login_lease : after the gateway stopped, let the lease holder release and exit.
release_login_lease() {
	if [[ -n $lease_pid ]]; then
		stop_child "$lease_pid" "$lease_pid" "$LEASE_RELEASE_TIMEOUT" || true
		lease_pid=''
	fi
}

# shellcheck disable=SC2329  # run by the ERR trap
on_error() {
	log "error: command failed at line $1 (status $2)"
}

write_configs() {
	ibgw_quiet
	ibgw_load_credentials
	ibgw_write_private "$CONFIG_DIR/ibc-config.ini.tmpl" "$IBC_INI" "${IBC_TEMPLATE_VARS[@]}"
	ibgw_forget_credentials
	ibgw_loud
	log "wrote $IBC_INI (mode 600); credentials removed from the environment"
	mkdir -p -- "$TWS_SETTINGS_PATH"
	# Settings the gateway saved itself (a mounted settings folder) are kept.
	if [[ ! -e $TWS_SETTINGS_PATH/jts.ini ]]; then
		ibgw_render "$CONFIG_DIR/jts.ini.tmpl" "$TWS_SETTINGS_PATH/jts.ini" TIME_ZONE
	fi
}

# set_java_heap : rewrite -Xmx in the gateway's vmoptions, which IBC's launcher reads.
set_java_heap() {
	local vmoptions=$GATEWAY_DIR/ibgateway.vmoptions size=${JAVA_HEAP_SIZE:-} line lines=()
	[[ -n $size ]] || return 0
	[[ $size == *[0-9] ]] && size+=m
	[[ -w $vmoptions ]] || die "JAVA_HEAP_SIZE is set but $vmoptions is not writable"
	while IFS= read -r line || [[ -n $line ]]; do
		[[ $line == -Xmx* ]] || lines+=("$line")
	done <"$vmoptions"
	lines+=("-Xmx$size")
	printf '%s\n' "${lines[@]}" >"$vmoptions"
	log "Java heap: -Xmx$size"
}

# start_xvfb : start a virtual display and wait until it is ready. Xvfb -displayfd writes
# the display number it chose once it accepts clients: an event, not a guess or a sleep.
start_xvfb() {
	local fifo=$run_dir/xvfb-display display=''
	mkfifo -m 600 -- "$fifo"
	Xvfb -displayfd 3 -nolisten tcp -screen 0 1024x768x24 3>"$fifo" &
	xvfb_pid=$!
	read -r -t "${XVFB_START_TIMEOUT:-20}" display <"$fifo" || true
	[[ $display =~ ^[0-9]+$ ]] || die "Xvfb did not report a display" 69
	export DISPLAY=:$display
	log "Xvfb ready on $DISPLAY"
}

# take_login_lease : with LOGIN_LEASE=firestore, run `ib-worker login-lease hold` and wait until
# it reports the lease acquired: another instance of this deployment (the previous revision,
# during a rollout) may still be logged in, and IBC's handler makes the NEW session lose. The
# holder renews the lease while the gateway runs and releases it when told to stop.
take_login_lease() {
	case $LOGIN_LEASE in
	off | '') return 0 ;;
	firestore) ;;
	*) die "LOGIN_LEASE must be firestore or off (got '$LOGIN_LEASE')" ;;
	esac
	local fifo=$run_dir/login-lease line status
	mkfifo -m 600 -- "$fifo"
	ib-worker login-lease hold >"$fifo" &
	lease_pid=$!
	exec {lease_fd}<"$fifo"
	log "waiting for this deployment's login lease before logging in"
	while :; do
		status=0
		IFS= read -r -t 1 -u "$lease_fd" line || status=$?
		if ((status == 0)) && [[ $line == acquired ]]; then break; fi
		((status > 128)) && continue # no answer yet: the holder is still waiting
		status=0
		wait "$lease_pid" || status=$?
		lease_pid=''
		die "the login lease holder exited (status $status) before it had the lease" "$EX_LEASE"
	done
	log "login lease acquired"
}

start_ibc() {
	local args=(
		"$TWS_MAJOR_VRSN" --gateway "--tws-path=$TWS_PATH" "--tws-settings-path=$TWS_SETTINGS_PATH"
		"--ibc-path=$IBC_PATH" "--ibc-ini=$IBC_INI" "--mode=$TRADING_MODE"
		"--on2fatimeout=$TWOFA_TIMEOUT_ACTION"
	)
	if [[ -n $JAVA_PATH ]]; then args+=("--java-path=$JAVA_PATH"); fi
	export TZ=${TZ:-$TIME_ZONE}
	log "starting IB Gateway $TWS_MAJOR_VRSN ($TRADING_MODE, API port $IB_PORT) via IBC"
	if [[ -n $LOG_PATH ]]; then
		mkdir -p -- "$LOG_PATH"
		setsid "$IBC_PATH/scripts/ibcstart.sh" "${args[@]}" \
			> >(tee -a -- "$LOG_PATH/ibc-$(date +%Y%m%d).log") 2>&1 &
	else
		setsid "$IBC_PATH/scripts/ibcstart.sh" "${args[@]}" &
	fi
	ibc_pid=$!
}

# supervise : wait for IBC's launcher, or for the lease holder (which exits only when the lease
# was lost: then this instance must log out, so the gateway is stopped).
supervise() {
	local exited='' status=0
	if [[ -z $lease_pid ]]; then
		wait "$ibc_pid" || ibc_status=$?
	else
		wait -n -p exited "$ibc_pid" "$lease_pid" || status=$?
		if [[ $exited == "$lease_pid" ]]; then
			lease_pid=''
			log "lost the login lease (holder status $status): stopping the gateway"
			stop_child "$ibc_pid" "-$ibc_pid" "$IBC_STOP_TIMEOUT" || true
			ibc_pid=''
			ibc_status=$EX_LEASE
			return
		fi
		ibc_status=$status
	fi
	ibc_pid=''
	log "IBC's launcher exited with status $ibc_status: the gateway is gone"
	release_login_lease
}

main() {
	ibgw_resolve_settings
	write_configs
	set_java_heap
	run_dir=$(mktemp -d "${TMPDIR:-/tmp}/ibgateway.XXXXXX")
	take_login_lease
	start_xvfb
	start_ibc
	supervise
}

# Traps first: a stop request that arrives while anything starts is never lost.
trap on_signal TERM INT
trap cleanup EXIT
trap 'on_error $LINENO $?' ERR
main "$@"
exit "$ibc_status"
