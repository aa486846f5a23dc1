#!/usr/bin/env bash
# Worker container entrypoint (run by tini as PID 1): start the IB Gateway (start-gateway.sh,
# which runs IBC) and the worker (gunicorn, or the command given) at the same time; no
# fixed sleeps: the worker's /readyz gates intents until the gateway is logged in.
#
# SIGTERM/SIGINT: the worker first (gunicorn stops taking requests and gives running
# intents ~7 s), then the gateway, within Cloud Run's 10 s. Exit status: the worker's when
# it exits or after a requested stop; non-zero when the gateway stops by itself (IBC's
# launcher exited), so that Cloud Run replaces the instance.
set -Eeuo pipefail

LOG_TAG=entrypoint
IBGW_SCRIPTS=${IBGW_SCRIPTS:-/usr/local/share/ibgateway/scripts}
GATEWAY_START=${GATEWAY_START:-$IBGW_SCRIPTS/start-gateway.sh}
WORKER_STOP_TIMEOUT=${WORKER_STOP_TIMEOUT:-8}
GATEWAY_STOP_TIMEOUT=${GATEWAY_STOP_TIMEOUT:-1.8}
DEFAULT_WORKER=(gunicorn --config python:worker.gunicorn_conf 'worker.app:create_app()')
# shellcheck source=gateway-image/scripts/proc-lib.sh
source "$IBGW_SCRIPTS/proc-lib.sh"

gateway_pid='' worker_pid='' exit_status=0

# shellcheck disable=SC2329  # run by the TERM/INT trap
on_signal() {
	trap '' TERM INT
	log "stop requested: stopping the worker, then the gateway"
	local status=0
	if [[ -n $worker_pid ]]; then
		stop_child "$worker_pid" "$worker_pid" "$WORKER_STOP_TIMEOUT" || status=$?
		log "worker exited with status $status"
	fi
	if [[ -n $gateway_pid ]]; then
		# On timeout, SIGKILL its whole session's group (Xvfb with it).
		stop_child "$gateway_pid" "$gateway_pid" "$GATEWAY_STOP_TIMEOUT" "-$gateway_pid" || true
	fi
	exit "$status"
}

# scrub_credentials : the gateway has read them; the worker must never inherit them.
scrub_credentials() {
	local var
	for var in IB_CREDENTIALS_JSON IB_USERNAME IB_PASSWORD TWS_USERID TWS_PASSWORD; do
		unset "$var" "${var}_FILE"
	done
}

# supervise : wait for the first child to exit, stop the other, set exit_status.
supervise() {
	local exited='' status=0
	wait -n -p exited "$gateway_pid" "$worker_pid" || status=$?
	if [[ $exited == "$gateway_pid" ]]; then
		gateway_pid=''
		log "the gateway stopped (status $status): stopping the worker so the instance is replaced"
		stop_child "$worker_pid" "$worker_pid" "$WORKER_STOP_TIMEOUT" || true
		exit_status=$((status == 0 ? 1 : status))
	else
		worker_pid=''
		log "the worker exited with status $status: stopping the gateway"
		stop_child "$gateway_pid" "$gateway_pid" "$GATEWAY_STOP_TIMEOUT" "-$gateway_pid" || true
		exit_status=$status
	fi
}

main() {
	local worker=("$@")
	((${#worker[@]})) || worker=("${DEFAULT_WORKER[@]}")
	# Own session: a Ctrl-C on a local `docker run -it` reaches only this script, which
	# keeps the order (worker first).
	setsid "$GATEWAY_START" &
	gateway_pid=$!
	scrub_credentials
	"${worker[@]}" &
	worker_pid=$!
	log "started the gateway (pid $gateway_pid) and the worker (pid $worker_pid)"
	supervise
}

# Traps first: a stop request that arrives while anything starts is never lost.
trap on_signal TERM INT
main "$@"
exit "$exit_status"
