# shellcheck shell=bash
# Process helpers shared by start-gateway.sh and the worker image's entrypoint.
# Sourced, never executed; defines functions only.

# log MESSAGE... : one line on stderr, prefixed with the calling program's name.
# stderr because stdout of the gateway belongs to IBC's own log lines.
log() {
	printf '%s: %s\n' "${LOG_TAG:-${0##*/}}" "$*" >&2
}

# die MESSAGE [STATUS] : log an error and exit (78 = EX_CONFIG, a setting is wrong).
die() {
	log "error: $1"
	exit "${2:-78}"
}

# stop_child PID TARGET TIMEOUT [KILL_TARGET] : send SIGTERM to TARGET (a pid, or -pgid for
# a whole process group), wait up to TIMEOUT seconds for PID to exit, then SIGKILL
# KILL_TARGET (default TARGET).
# Returns PID's exit status. Uses a sleeping child as the timer so that `wait -n` wakes
# on whichever ends first: no polling, and nothing left behind.
stop_child() {
	local pid=$1 target=$2 timeout=$3 kill_target=${4:-$2} timer status=0
	kill -TERM -- "$target" 2>/dev/null || true
	sleep "$timeout" &
	timer=$!
	wait -n "$pid" "$timer" 2>/dev/null || true
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid still running ${timeout}s after SIGTERM: sending SIGKILL"
		kill -KILL -- "$kill_target" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || status=$?
	# SIGKILL: a timer started from a signal handler inherits the ignored SIGTERM.
	kill -KILL "$timer" 2>/dev/null || true
	wait "$timer" 2>/dev/null || true
	return "$status"
}
